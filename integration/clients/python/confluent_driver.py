"""confluent-kafka-python (librdkafka) driver: AdminClient creates the topics, an idempotent Producer
(acks=all) produces with each codec, a Consumer with manual assign() reads from the beginning."""
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

import compat_common as cc

CLIENT = "confluent-kafka-python"


VERSION = "%s (librdkafka %s)" % (confluent_kafka.version()[0], confluent_kafka.libversion()[0])


def group(a):
    """Consumer group: the first consumer processes a.first records and commits them synchronously
    (auto-commit off), closes; a second consumer of the same group reads the rest."""
    res = cc.group_result(VERSION)

    def consume(limit, commit):
        c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
        c.subscribe([a.topic])
        got = []
        deadline = time.time() + a.timeout
        while len(got) < limit and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                res["errors"].append("poll: %s" % m.error())
                continue
            got.append(cc.record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers()))
        if commit:
            try:
                c.commit(offsets=[TopicPartition(a.topic, p, o) for p, o in cc.next_offsets(got).items()],
                         asynchronous=False)
            except Exception as e:  # noqa: BLE001
                res["errors"].append("commit: %r" % e)
        c.close()
        return got

    res["first"] = consume(a.first, True)
    res["second"] = consume(a.rest, False)
    cc.emit(res)


def times(a):
    """offsets_for_times on partition 0 of a.topic for each of a.times."""
    res = {"offsets": {}, "errors": []}
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "compat-times", "enable.auto.commit": False})
    try:
        for ts in a.times:
            tp = c.offsets_for_times([TopicPartition(a.topic, 0, ts)], timeout=15)[0]
            if tp.error:
                res["errors"].append(str(tp.error))
            else:
                res["offsets"][str(ts)] = tp.offset
    except Exception as e:  # noqa: BLE001
        res["errors"].append(repr(e))
    c.close()
    cc.emit(res)


def replay_produce(a):
    """The idempotent Producer writes a.n records to a.topic in a.rounds rounds, flushing after each."""
    res = cc.result(CLIENT, VERSION)
    errors = []
    try:
        p = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
        for rnd in cc.replay_rounds(a):
            for i in rnd:
                p.produce(a.topic, key=cc.key(i).encode(), value=cc.value(CLIENT, cc.REPLAY_CODEC, i).encode(),
                          headers=[(k, v.encode()) for k, v in cc.headers(cc.REPLAY_CODEC, i)], on_delivery=on_delivery)
            left = p.flush(30)
            if left:
                errors.append("%d messages not delivered after flush(30)" % left)
                break
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))
    res["produced"][cc.REPLAY_CODEC] = "; ".join(errors[:3])
    cc.emit(res)


def replay_consume(a):
    """A Consumer assigned every partition of a.topic at offset 0 reads until a.n records or the timeout."""
    res = cc.result(CLIENT, VERSION)
    cons = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "compat-replay-assign-only",
                     "enable.auto.commit": False, "auto.offset.reset": "error"})
    cons.assign([TopicPartition(a.topic, p, 0) for p in range(a.partitions)])
    deadline = time.time() + a.timeout
    while len(res["consumed"]) < a.n and time.time() < deadline:
        m = cons.poll(0.5)
        if m is None:
            continue
        if m.error():
            if len(res["notes"]) < 5:
                res["notes"].append("consume error: %s" % m.error())
            continue
        res["consumed"].append(cc.record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers()))
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
    res = cc.result(CLIENT, VERSION)

    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    futs = admin.create_topics([NewTopic(cc.topic(c), num_partitions=3, replication_factor=a.rf) for c in a.codecs],
                               operation_timeout=30, request_timeout=60)  # librdkafka's default request timeout
    for t, f in futs.items():
        try:
            f.result(timeout=70)
            res["created"][t] = ""
        except Exception as e:  # noqa: BLE001 - reported per topic
            res["created"][t] = repr(e)

    try:
        admin.create_topics([NewTopic(cc.DELETE_TOPIC, num_partitions=3, replication_factor=a.rf)],
                            operation_timeout=30, request_timeout=60)[cc.DELETE_TOPIC].result(timeout=70)
        admin.delete_topics([cc.DELETE_TOPIC], operation_timeout=30, request_timeout=60)[cc.DELETE_TOPIC].result(timeout=70)
        res["deleted"] = {cc.DELETE_TOPIC: ""}
    except Exception as e:  # noqa: BLE001
        res["deleted"] = {cc.DELETE_TOPIC: repr(e)}

    for c in a.codecs:
        errors = []
        try:
            p = Producer({"bootstrap.servers": a.bootstrap, "compression.type": c, "enable.idempotence": True,
                          "acks": "all", "linger.ms": 5})

            def on_delivery(err, msg, errors=errors):
                if err is not None:
                    errors.append(str(err))
            for i in range(a.n):
                p.produce(cc.topic(c), key=cc.key(i).encode(), value=cc.value(CLIENT, c, i).encode(),
                          headers=[(k, v.encode()) for k, v in cc.headers(c, i)], on_delivery=on_delivery)
            left = p.flush(30)
            if left:
                errors.append("%d messages not delivered after flush(30)" % left)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        res["produced"][c] = "; ".join(errors[:3])

    for c in a.codecs:
        cons = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "compat-assign-only",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        cons.assign([TopicPartition(cc.topic(c), p, OFFSET_BEGINNING) for p in range(3)])
        got = 0
        deadline = time.time() + a.timeout
        while got < a.n and time.time() < deadline:
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                cc.log("consume error:", m.error())
                continue
            res["consumed"].append(cc.record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers()))
            got += 1
        cons.close()
    cc.emit(res)


if __name__ == "__main__":
    main()
