"""Failover producer for the librdkafka failover figure (integration/cluster_failover_test.go).

confluent-kafka-python (librdkafka) with its default timeouts and metadata refresh settings; only
idempotence is switched on (so acks=all, and retries cannot duplicate). It produces a unique
zero-padded number every 2 ms, round-robin over the topic's partitions, until SIGTERM, then
flushes. Each outcome is one line on stdout:
    ack <value> <partition> <offset> <sent unix ns> <acked unix ns>
    err <value> <error>
and a final "done <librdkafka version>".
usage: failover_producer.py <bootstrap> <topic> <partitions>"""
import signal
import sys
import time

import confluent_kafka
from confluent_kafka import Producer


def main():
    bootstrap, topic, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    out = sys.stdout

    def report(v, sent):
        def cb(err, msg):
            if err is not None:
                out.write("err %d %s\n" % (v, str(err).replace("\n", " ")))
            else:
                out.write("ack %d %d %d %d %d\n" % (v, msg.partition(), msg.offset(), sent, time.time_ns()))
        return cb

    v = 0
    while not stop:
        v += 1
        sent = time.time_ns()
        while True:
            try:
                p.produce(topic, value=b"%09d" % v, partition=v % parts, on_delivery=report(v, sent))
                break
            except BufferError:  # local queue full while no leader answers: wait for deliveries
                p.poll(0.05)
        p.poll(0)
        out.flush()
        time.sleep(0.002)
    p.flush(60)
    out.write("done %s\n" % confluent_kafka.libversion()[0])
    out.flush()


if __name__ == "__main__":
    main()
