"""One consumer-group member as its own process (confluent-kafka/librdkafka).

Prints a JSON line {"assigned": [...]} whenever its assignment changes, and
{"revoked": [...]} on revocations. Runs until killed.

usage: group_member.py BOOTSTRAP GROUP TOPIC [STRATEGY [GROUP_INSTANCE_ID]]
"""

import json
import sys

from confluent_kafka import Consumer

bootstrap, group, topic = sys.argv[1:4]
strategy = sys.argv[4] if len(sys.argv) > 4 else "range"
instance = sys.argv[5] if len(sys.argv) > 5 else None
owned = set()


def emit(**kw):
    print(json.dumps(kw), flush=True)


def on_assign(consumer, parts):
    owned.update(p.partition for p in parts)
    emit(assigned=sorted(owned))


def on_revoke(consumer, parts):
    revoked = {p.partition for p in parts}
    owned.difference_update(revoked)
    emit(revoked=sorted(revoked), assigned=sorted(owned))


conf = {
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
}
if strategy == "consumer":
    # KIP-848: the broker assigns; timeouts are the broker's group.consumer.* settings.
    conf["group.protocol"] = "consumer"
else:
    conf.update({"session.timeout.ms": 3000, "heartbeat.interval.ms": 300, "partition.assignment.strategy": strategy})
if instance:
    conf["group.instance.id"] = instance
c = Consumer(conf)
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
while True:
    c.poll(0.2)
