"""kafka-python driver: KafkaAdminClient creates the topics, KafkaProducer (acks=all) produces with each
codec (snappy/lz4/zstd need python3-snappy / python3-lz4 / python3-zstandard), a KafkaConsumer with
assign() + seek_to_beginning() reads back."""
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic

import compat_common as cc

CLIENT = "kafka-python"


def group(a):
    """Consumer group: the first consumer processes a.first records and commits them (auto-commit
    off), closes; a second consumer of the same group reads the rest."""
    res = cc.group_result(kafka.__version__)

    def consume(limit, commit):
        c = KafkaConsumer(a.topic, bootstrap_servers=a.bootstrap, group_id=a.group, enable_auto_commit=False,
                          auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=1000)
        got = []
        deadline = time.time() + a.timeout
        try:
            while len(got) < limit and time.time() < deadline:
                batch = c.poll(timeout_ms=500, max_records=limit - len(got))
                for tp, msgs in batch.items():
                    for m in msgs:
                        got.append(cc.record(m.topic, m.partition, m.offset, m.key, m.value, m.headers))
            if commit:
                c.commit({TopicPartition(a.topic, p): OffsetAndMetadata(o, None)
                          for p, o in cc.next_offsets(got).items()})
        except Exception as e:  # noqa: BLE001
            res["errors"].append(repr(e))
        c.close(autocommit=False)
        return got

    res["first"] = consume(a.first, True)
    res["second"] = consume(a.rest, False)
    cc.emit(res)


def times(a):
    """offsets_for_times on partition 0 of a.topic for each of a.times."""
    res = {"offsets": {}, "errors": []}
    c = KafkaConsumer(bootstrap_servers=a.bootstrap, enable_auto_commit=False, group_id=None)
    tp = TopicPartition(a.topic, 0)
    try:
        for ts in a.times:
            r = c.offsets_for_times({tp: ts})[tp]
            if r is None:
                res["errors"].append("no offset for %d" % ts)
            else:
                res["offsets"][str(ts)] = r.offset
    except Exception as e:  # noqa: BLE001
        res["errors"].append(repr(e))
    c.close()
    cc.emit(res)


def replay_produce(a):
    """KafkaProducer (acks=all) writes a.n records to a.topic in a.rounds rounds, flushing after each."""
    res = cc.result(CLIENT, kafka.__version__)
    try:
        p = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", linger_ms=5)
        for rnd in cc.replay_rounds(a):
            futs = [p.send(a.topic, key=cc.key(i).encode(), value=cc.value(CLIENT, cc.REPLAY_CODEC, i).encode(),
                           headers=[(k, v.encode()) for k, v in cc.headers(cc.REPLAY_CODEC, i)]) for i in rnd]
            p.flush(30)
            for f in futs:
                f.get(timeout=30)
        p.close(10)
        res["produced"][cc.REPLAY_CODEC] = ""
    except Exception as e:  # noqa: BLE001
        res["produced"][cc.REPLAY_CODEC] = repr(e)
    cc.emit(res)


def replay_consume(a):
    """KafkaConsumer.assign(every partition) + seek(tp, 0) reads until a.n records or the timeout."""
    res = cc.result(CLIENT, kafka.__version__)
    cons = KafkaConsumer(bootstrap_servers=a.bootstrap, enable_auto_commit=False, group_id=None,
                         auto_offset_reset="none")
    tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
    cons.assign(tps)
    for tp in tps:
        cons.seek(tp, 0)
    deadline = time.time() + a.timeout
    try:
        while len(res["consumed"]) < a.n and time.time() < deadline:
            for tp, msgs in cons.poll(timeout_ms=500).items():
                for m in msgs:
                    res["consumed"].append(cc.record(m.topic, m.partition, m.offset, m.key, m.value, m.headers))
    except Exception as e:  # noqa: BLE001
        res["notes"].append("consume: %r" % e)
    cons.close()
    cc.emit(res)


def main():
    a = cc.args()
    if a.mode == "group":
        return group(a)
    if a.mode == "time":
        return times(a)
    if a.mode == "replay-produce":
        return replay_produce(a)
    if a.mode == "replay-consume":
        return replay_consume(a)
    res = cc.result(CLIENT, kafka.__version__)

    try:
        admin = KafkaAdminClient(bootstrap_servers=a.bootstrap, client_id="compat-kafka-python")
        resp = admin.create_topics([NewTopic(cc.topic(c), num_partitions=3, replication_factor=a.rf) for c in a.codecs])
        for t, code, msg in [(x[0], x[1], x[2] if len(x) > 2 else "") for x in resp.topic_errors]:
            res["created"][t] = "" if code == 0 else "error code %d: %s" % (code, msg)
        try:
            cr = admin.create_topics([NewTopic(cc.DELETE_TOPIC, num_partitions=3, replication_factor=a.rf)])
            codes = [x[1] for x in cr.topic_errors]
            if any(codes):
                raise RuntimeError("create: error codes %s" % codes)
            dr = admin.delete_topics([cc.DELETE_TOPIC])
            codes = [x[1] for x in dr.topic_error_codes]
            res["deleted"] = {cc.DELETE_TOPIC: "" if not any(codes) else "delete: error codes %s" % codes}
        except Exception as e:  # noqa: BLE001
            res["deleted"] = {cc.DELETE_TOPIC: repr(e)}
        admin.close()
    except Exception as e:  # noqa: BLE001
        for c in a.codecs:
            res["created"][cc.topic(c)] = repr(e)

    for c in a.codecs:
        try:
            p = KafkaProducer(bootstrap_servers=a.bootstrap, acks="all", linger_ms=5,
                              compression_type=None if c == "none" else c)
            futs = [p.send(cc.topic(c), key=cc.key(i).encode(), value=cc.value(CLIENT, c, i).encode(),
                           headers=[(k, v.encode()) for k, v in cc.headers(c, i)]) for i in range(a.n)]
            p.flush(30)
            for f in futs:
                f.get(timeout=30)
            p.close(10)
            res["produced"][c] = ""
        except Exception as e:  # noqa: BLE001
            res["produced"][c] = repr(e)

    for c in a.codecs:
        cons = KafkaConsumer(bootstrap_servers=a.bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
        tps = [TopicPartition(cc.topic(c), p) for p in range(3)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        got = 0
        deadline = time.time() + a.timeout
        while got < a.n and time.time() < deadline:
            batch = cons.poll(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    res["consumed"].append(cc.record(m.topic, m.partition, m.offset, m.key, m.value, m.headers))
                    got += 1
        cons.close()
    cc.emit(res)


if __name__ == "__main__":
    main()
