"""Shared by the Python client drivers of Sediment's compatibility tests.

The record formulas MUST match integration/compat_util_test.go (compatKey, compatValue, compatHeaders).
A driver prints exactly one JSON object (the Go side's compatResult) on stdout; diagnostics go to stderr.
"""
import argparse
import json
import sys


def key(i):
    return "key-%d" % (i % 7)


def value(client, codec, i):
    return "%s|%s|%d|\u00e9t\u00e9 %s" % (client, codec, i, "sediment " * 16)


def headers(codec, i):
    return [("part", str(i % 3)), ("codec", codec)]


def topic(codec):
    return "compat-" + codec


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--codecs", required=True, help="comma-separated: none,gzip,snappy,lz4,zstd")
    p.add_argument("--n", type=int, required=True, help="records per codec")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for records when consuming")
    a = p.parse_args()
    a.codecs = [c for c in a.codecs.split(",") if c]
    return a


def result(client, version):
    return {"client": client, "version": version, "created": {}, "produced": {}, "consumed": [], "notes": []}


def record(topic, partition, offset, k, v, hdrs):
    def s(b):
        if b is None:
            return ""
        return b.decode("utf-8") if isinstance(b, (bytes, bytearray)) else str(b)
    return {"topic": topic, "partition": partition, "offset": offset, "key": s(k), "value": s(v),
            "headers": [[hk, s(hv)] for hk, hv in (hdrs or [])]}


def emit(res):
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(*a):
    print(*a, file=sys.stderr, flush=True)
