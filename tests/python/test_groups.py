"""Consumer groups against the real broker: librdkafka (confluent-kafka) in
separate processes, kafka-python, and the admin APIs."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

HERE = Path(__file__).parent
FAST_GROUPS = {"GREGOR_GROUP_INITIAL_REBALANCE_DELAY_MS": "300", "GREGOR_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
               "GREGOR_GROUP_CONSUMER_SESSION_TIMEOUT_MS": "3000", "GREGOR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS": "300"}


@pytest.fixture
def broker(gregor_factory):
    return gregor_factory(FAST_GROUPS)


def create_topic(addr, name, partitions):
    a = AdminClient({"bootstrap.servers": addr})
    for f in a.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(10)


def produce(addr, topic, n, partitions):
    p = Producer({"bootstrap.servers": addr})
    for i in range(n):
        p.produce(topic, value=f"v{i}".encode(), partition=i % partitions)
    assert p.flush(20) == 0


class Member:
    """A group member process and the assignment it last reported."""

    def __init__(self, addr, group, topic, strategy="range", instance=None):
        args = [addr, group, topic, strategy] + ([instance] if instance else [])
        self.proc = subprocess.Popen([sys.executable, str(HERE / "group_member.py"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.assigned = set()
        self.revocations = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self.lock:
                if "revoked" in ev:
                    self.revocations.append(set(ev["revoked"]))
                self.assigned = set(ev["assigned"])

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def wait_until(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def split_ok(members, partitions):
    owned = [m.assigned for m in members]
    union = set().union(*owned)
    return union == set(range(partitions)) and sum(len(o) for o in owned) == partitions and all(owned)


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky", "consumer"])
def test_three_processes_split_six_partitions_and_survive_a_crash(broker, strategy):
    create_topic(broker.addr, "six", 6)
    members = [Member(broker.addr, f"split-{strategy}", "six", strategy) for _ in range(3)]
    try:
        assert wait_until(lambda: split_ok(members, 6)), [m.assigned for m in members]
        members[0].kill()
        t0 = time.time()
        assert wait_until(lambda: split_ok(members[1:], 6), timeout=20), [m.assigned for m in members[1:]]
        # session.timeout.ms is 3 s; the hand-over must come soon after.
        assert time.time() - t0 < 15
    finally:
        for m in members:
            m.stop()


def test_cooperative_sticky_rebalances_incrementally(broker):
    create_topic(broker.addr, "coop", 6)
    first = Member(broker.addr, "coop-group", "coop", "cooperative-sticky")
    try:
        assert wait_until(lambda: first.assigned == set(range(6)))
        second = Member(broker.addr, "coop-group", "coop", "cooperative-sticky")
        assert wait_until(lambda: split_ok([first, second], 6)), (first.assigned, second.assigned)
        # Incremental: the first member only ever gave up what moved, never everything.
        assert first.revocations and all(len(r) < 6 for r in first.revocations), first.revocations
        assert len(first.assigned) == 3
        second.stop()
    finally:
        first.stop()


def test_static_member_restart_does_not_rebalance_the_group(broker):
    create_topic(broker.addr, "static", 4)
    dynamic = Member(broker.addr, "static-group", "static")
    static = Member(broker.addr, "static-group", "static", instance="worker-1")
    try:
        assert wait_until(lambda: split_ok([dynamic, static], 4))
        before_dynamic, before_static = set(dynamic.assigned), set(static.assigned)
        revocations = len(dynamic.revocations)
        static.kill()  # no LeaveGroup: a crash or a rolling restart
        static = Member(broker.addr, "static-group", "static", instance="worker-1")
        assert wait_until(lambda: static.assigned == before_static), static.assigned
        time.sleep(1.5)
        assert dynamic.assigned == before_dynamic
        assert len(dynamic.revocations) == revocations, "the other member was rebalanced"
    finally:
        dynamic.stop()
        static.stop()


def consume_n(conf, topic, n, timeout=30):
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((m.partition(), m.offset(), m.value()))
    return c, got


def test_committed_offsets_survive_consumer_restart_and_broker_kill(broker):
    create_topic(broker.addr, "resume", 2)
    produce(broker.addr, "resume", 100, 2)
    conf = {"bootstrap.servers": broker.addr, "group.id": "resumer", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 3000}
    c, got = consume_n(conf, "resume", 60)
    assert len(got) >= 60
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition("resume", 0), TopicPartition("resume", 1)])}
    c.close()
    assert sum(committed.values()) == len(got)

    # A new consumer process state: resumes exactly at the committed offsets.
    c, got2 = consume_n(conf, "resume", 100 - len(got))
    assert {(p, o) for p, o, _ in got2}.isdisjoint({(p, o) for p, o, _ in got})
    assert len(got) + len(got2) == 100
    for part, off in committed.items():
        rest = [o for p, o, _ in got2 if p == part]
        assert (min(rest) if rest else 50) == off, f"partition {part} did not resume at {off}"
    c.close()

    # kill -9 the broker; the offsets come back from __consumer_offsets.
    broker.stop(signal.SIGKILL)
    broker.start()
    c = Consumer({**conf, "bootstrap.servers": broker.addr})
    after = {tp.partition: tp.offset for tp in c.committed([TopicPartition("resume", 0), TopicPartition("resume", 1)], timeout=20)}
    assert after == committed
    c.close()
    assert "consumer groups loaded" in broker.log()


def test_kafka_python_group_consumer_commits_and_resumes(broker):
    p = KafkaProducer(bootstrap_servers=broker.addr)
    for i in range(50):
        p.send("kp", value=f"{i}".encode(), partition=0)
    p.flush()
    p.close()

    def run(n):
        c = KafkaConsumer("kp", bootstrap_servers=broker.addr, group_id="kp-group", auto_offset_reset="earliest",
                          enable_auto_commit=False, consumer_timeout_ms=15000, session_timeout_ms=6000)
        out = []
        for m in c:
            out.append(int(m.value))
            if len(out) == n:
                break
        c.commit()
        c.close()
        return out

    assert run(20) == list(range(20))
    assert run(30) == list(range(20, 50)), "resumed at the committed offset"


def test_admin_lists_describes_alters_and_deletes_groups(broker):
    create_topic(broker.addr, "adm-g", 3)
    produce(broker.addr, "adm-g", 30, 3)
    conf = {"bootstrap.servers": broker.addr, "group.id": "admin-group", "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 3000}
    c, got = consume_n(conf, "adm-g", 30)
    c.commit(asynchronous=False)
    a = AdminClient({"bootstrap.servers": broker.addr})

    listed = a.list_consumer_groups().result(10)
    assert "admin-group" in {g.group_id for g in listed.valid}
    desc = a.describe_consumer_groups(["admin-group"])["admin-group"].result(10)
    assert str(desc.state).endswith("STABLE")
    assert len(desc.members) == 1
    assert {tp.partition for tp in desc.members[0].assignment.topic_partitions} == {0, 1, 2}

    # A group with a live member cannot be deleted.
    res = a.delete_consumer_groups(["admin-group"])["admin-group"]
    with pytest.raises(KafkaException) as e:
        res.result(10)
    assert "NON_EMPTY_GROUP" in str(e.value)
    c.close()
    assert wait_until(lambda: str(a.describe_consumer_groups(["admin-group"])["admin-group"].result(10).state).endswith("EMPTY"))

    # Reset offsets through the admin client, read them back.
    req = ConsumerGroupTopicPartitions("admin-group", [TopicPartition("adm-g", 0, 3), TopicPartition("adm-g", 1, 4)])
    a.alter_consumer_group_offsets([req])["admin-group"].result(10)
    offs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("admin-group")])["admin-group"].result(10)
    got_offsets = {tp.partition: tp.offset for tp in offs.topic_partitions}
    assert got_offsets[0] == 3 and got_offsets[1] == 4 and got_offsets[2] == 10

    a.delete_consumer_groups(["admin-group"])["admin-group"].result(10)
    assert "admin-group" not in {g.group_id for g in a.list_consumer_groups().result(10).valid}


def test_kip848_consumer_protocol_commits_describes_and_survives_broker_kill(broker):
    create_topic(broker.addr, "k848", 4)
    produce(broker.addr, "k848", 40, 4)
    conf = {"bootstrap.servers": broker.addr, "group.id": "g848", "group.protocol": "consumer",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    c, got = consume_n(conf, "k848", 40)
    assert len(got) == 40
    c.commit(asynchronous=False)
    a = AdminClient({"bootstrap.servers": broker.addr})
    d = a.describe_consumer_groups(["g848"])["g848"].result(10)
    assert str(d.type).endswith("CONSUMER") and str(d.state).endswith("STABLE")
    assert {tp.partition for m in d.members for tp in m.assignment.topic_partitions} == {0, 1, 2, 3}
    listed = {g.group_id: g for g in a.list_consumer_groups().result(10).valid}
    assert str(listed["g848"].type).endswith("CONSUMER")

    # kill -9: the group's epochs and assignment come back from __consumer_offsets,
    # and the member carries on where it was.
    broker.stop(signal.SIGKILL)
    c.close()
    broker.start()
    produce(broker.addr, "k848", 8, 4)
    c, got2 = consume_n({**conf, "bootstrap.servers": broker.addr}, "k848", 8)
    assert sorted(o for _, o, _ in got2) == [10, 10, 10, 10, 11, 11, 11, 11], "resumed after the committed offsets"
    c.close()
