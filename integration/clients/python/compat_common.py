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


DELETE_TOPIC = "compat-delete"  # created and deleted through the admin API


def topic(codec):
    return "compat-" + codec


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--mode", default="roundtrip",
                   choices=["roundtrip", "group", "time", "replay-produce", "replay-consume"])
    p.add_argument("--times", default="", help="time: comma-separated timestamps (ms) to look up in partition 0")
    p.add_argument("--codecs", default="", help="roundtrip: comma-separated: none,gzip,snappy,lz4,zstd")
    p.add_argument("--n", type=int, default=0, help="roundtrip: records per codec")
    p.add_argument("--rf", type=int, default=1, help="roundtrip: replication factor of the topics it creates")
    p.add_argument("--group", default="", help="group: the consumer group id")
    p.add_argument("--topic", default="compat-group", help="group: the topic")
    p.add_argument("--first", type=int, default=0, help="group: records the first consumer processes and commits")
    p.add_argument("--rest", type=int, default=0, help="group: records the second consumer then reads")
    p.add_argument("--rounds", type=int, default=1, help="replay-produce: flushed rounds the --n records are split into")
    p.add_argument("--partitions", type=int, default=3, help="replay-consume: partitions of --topic, each read from offset 0")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for records when consuming")
    a = p.parse_args()
    a.codecs = [c for c in a.codecs.split(",") if c]
    a.times = [int(x) for x in a.times.split(",") if x]
    return a


def result(client, version):
    return {"client": client, "version": version, "created": {}, "produced": {}, "consumed": [], "notes": []}


REPLAY_CODEC = "replay"  # the codec field of the replay records' values (produced uncompressed)


def replay_rounds(a):
    """The record index ranges of the replay scenario's rounds (integration/compat_replay_util_test.go)."""
    per = a.n // a.rounds
    return [range(r * per, (r + 1) * per) for r in range(a.rounds)]


def group_result(version):
    return {"version": version, "first": [], "second": [], "errors": []}


def next_offsets(records):
    """partition -> offset to commit (last processed + 1) for records (dicts from record())."""
    out = {}
    for r in records:
        out[r["partition"]] = max(out.get(r["partition"], 0), r["offset"] + 1)
    return out


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
