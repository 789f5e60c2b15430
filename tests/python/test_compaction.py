"""cleanup.policy=compact against the real broker: a topic with many
overwrites shrinks on disk, and a fresh consumer sees exactly the latest
value of every key."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourceType)


def log_bytes(g, topic):
    d = g.data_dir / f"{topic}-0"
    return sum(f.stat().st_size for f in d.glob("*.log"))


def test_compacted_topic_keeps_latest_value_per_key(gregor_factory):
    g = gregor_factory({"GREGOR_LOG_CLEANER_BACKOFF_MS": "300"})
    a = AdminClient({"bootstrap.servers": g.addr})
    a.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "8192"})])["compacted"].result(10)
    p = Producer({"bootstrap.servers": g.addr, "compression.codec": "lz4", "linger.ms": 5})
    latest = {}
    for i in range(3000):
        key = f"key-{i % 25}"
        value = f"{key}-version-{i}-{'p' * 60}"
        p.produce("compacted", key=key.encode(), value=value.encode())
        latest[key] = value
        if i % 100 == 0:
            p.flush(10)
    assert p.flush(20) == 0
    end = 3000
    written = log_bytes(g, "compacted")
    deadline = time.time() + 30
    while time.time() < deadline and log_bytes(g, "compacted") > written / 4:
        time.sleep(0.3)
    assert log_bytes(g, "compacted") < written / 4, f"{written} -> {log_bytes(g, 'compacted')} bytes"

    c = Consumer({"bootstrap.servers": g.addr, "group.id": "fresh", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("compacted", 0, 0)])
    seen, count, last_offset = {}, 0, -1
    deadline = time.time() + 30
    while last_offset < end - 1 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        assert m.offset() > last_offset, "offsets must stay in order"
        last_offset = m.offset()
        seen[m.key().decode()] = m.value().decode()
        count += 1
    c.close()
    assert last_offset == end - 1, "the log end is unchanged by compaction"
    assert seen == latest, "every key's latest value, nothing stale last"
    assert count < 3000 / 3, f"compaction left {count} of 3000 records"
    assert "records_removed" in g.log(), "the cleaner did the work"


def test_min_compaction_lag_holds_young_records_back(gregor_factory):
    g = gregor_factory({"GREGOR_LOG_CLEANER_BACKOFF_MS": "200"})
    a = AdminClient({"bootstrap.servers": g.addr})
    a.create_topics([NewTopic("lagged", 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "min.compaction.lag.ms": "3600000"})])["lagged"].result(10)
    p = Producer({"bootstrap.servers": g.addr, "linger.ms": 5})
    for i in range(600):
        p.produce("lagged", key=f"k{i % 10}".encode(), value=f"v{i}-{'x' * 50}".encode())
        if i % 40 == 0:
            p.flush(10)  # small batches, so segments roll
    assert p.flush(20) == 0
    written = log_bytes(g, "lagged")
    assert len(list((g.data_dir / "lagged-0").glob("*.log"))) > 3
    time.sleep(2)  # ten cleaner passes
    assert log_bytes(g, "lagged") == written, "records younger than min.compaction.lag.ms were compacted"

    entry = ConfigEntry("min.compaction.lag.ms", "0", incremental_operation=AlterConfigOpType.SET)
    fut = a.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, "lagged", incremental_configs=[entry])])
    next(iter(fut.values())).result(timeout=10)
    deadline = time.time() + 20
    while time.time() < deadline and log_bytes(g, "lagged") > written / 4:
        time.sleep(0.2)
    assert log_bytes(g, "lagged") < written / 4, "lifting the lag lets the cleaner work"


def test_compacted_topics_refuse_records_without_keys(gregor):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError
    a = AdminClient({"bootstrap.servers": gregor.addr})
    a.create_topics([NewTopic("needs-keys", 1, 1, config={"cleanup.policy": "compact"})])["needs-keys"].result(10)
    p = KafkaProducer(bootstrap_servers=gregor.addr, compression_type="gzip", retries=0)
    assert p.send("needs-keys", key=b"k", value=b"v").get(timeout=10).offset == 0
    try:
        p.send("needs-keys", value=b"no key").get(timeout=10)
        raise AssertionError("a keyless record was accepted by a compacted topic")
    except InvalidRecordError:
        pass
    p.close()

    errors = []
    cp = Producer({"bootstrap.servers": gregor.addr, "compression.codec": "snappy"})
    cp.produce("needs-keys", value=b"no key either", on_delivery=lambda err, msg: errors.append(err))
    cp.flush(10)
    assert errors and errors[0] is not None and "INVALID_RECORD" in errors[0].name(), errors
