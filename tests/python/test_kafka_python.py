"""kafka-python (an independent, pure-Python Kafka implementation) and kcat
(librdkafka) against the real broker, including data produced by one and
consumed by the other."""

import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import InvalidConfigurationError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
KCAT_CODECS = {None: "none", "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}


def kcat(*args, input=None, timeout=60):
    r = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


def consume_all(addr, topic, n, partitions=(0,), **kw):
    c = KafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False, consumer_timeout_ms=30000, **kw)
    c.assign([TopicPartition(topic, p) for p in partitions])
    for p in partitions:
        c.seek_to_beginning(TopicPartition(topic, p))
    out = []
    for m in c:
        out.append(m)
        if len(out) >= n:
            break
    c.close()
    return out


def test_quickstart_commands_from_the_issue(gregor):
    listing = kcat("-b", gregor.addr, "-L").decode()
    assert "1 brokers" in listing
    kcat("-b", gregor.addr, "-P", "-t", "orders", "-K:", input=b"k1:hello\nk2:world\n")
    out = kcat("-b", gregor.addr, "-C", "-t", "orders", "-e", "-f", "%k %s %o\\n").decode()
    assert out.splitlines() == ["k1 hello 0", "k2 world 1"]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_produces_kcat_consumes(gregor, codec):
    topic = f"py-to-kcat-{KCAT_CODECS[codec]}"
    p = KafkaProducer(bootstrap_servers=gregor.addr, compression_type=codec, linger_ms=20, acks="all")
    futures = [p.send(topic, key=f"k{i}".encode(), value=f"value-{i}-{codec}".encode()) for i in range(1000)]
    offsets = [f.get(timeout=30).offset for f in futures]
    assert offsets == list(range(1000))
    p.close()
    out = kcat("-b", gregor.addr, "-C", "-t", topic, "-e", "-f", "%o|%k|%s\\n").decode().splitlines()
    assert out == [f"{i}|k{i}|value-{i}-{codec}" for i in range(1000)]


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_produces_kafka_python_consumes(gregor, codec):
    topic = f"kcat-to-py-{KCAT_CODECS[codec]}"
    lines = "".join(f"key{i}:payload {i} {'z' * (i % 50)}\n" for i in range(1000)).encode()
    kcat("-b", gregor.addr, "-P", "-t", topic, "-K:", "-z", KCAT_CODECS[codec], "-X", "linger.ms=20", input=lines)
    msgs = consume_all(gregor.addr, topic, 1000)
    assert [(m.offset, m.key, m.value) for m in msgs] == [
        (i, f"key{i}".encode(), f"payload {i} {'z' * (i % 50)}".encode()) for i in range(1000)
    ]


def test_keyed_records_with_headers_and_timestamps(gregor):
    p = KafkaProducer(bootstrap_servers=gregor.addr, linger_ms=5)
    base = 1_650_000_000_000
    n = 10_000
    futures = []
    for i in range(n):
        futures.append(p.send("hdrs", key=None if i % 10 == 0 else f"key-{i}".encode(), value=b"" if i % 7 == 0 else bytes([i % 256]) * (i % 100),
                              headers=[("i", str(i).encode()), ("e", b"")], timestamp_ms=base + i, partition=0))
    for f in futures:
        f.get(timeout=30)
    p.close()
    msgs = consume_all(gregor.addr, "hdrs", n)
    assert len(msgs) == n
    for i, m in enumerate(msgs):
        assert m.offset == i
        assert m.key == (None if i % 10 == 0 else f"key-{i}".encode())
        assert m.value == (b"" if i % 7 == 0 else bytes([i % 256]) * (i % 100))
        assert list(m.headers) == [("i", str(i).encode()), ("e", b"")]
        assert m.timestamp == base + i


def test_offsets_for_times_and_seek(gregor):
    p = KafkaProducer(bootstrap_servers=gregor.addr, linger_ms=100)
    base = 1_500_000_000_000
    for i in range(100):
        p.send("times", value=f"{i}".encode(), timestamp_ms=base + i * 100, partition=0)
    p.flush()
    p.close()
    c = KafkaConsumer(bootstrap_servers=gregor.addr, enable_auto_commit=False, consumer_timeout_ms=10000)
    tp = TopicPartition("times", 0)
    res = c.offsets_for_times({tp: base + 4250})
    assert res[tp].offset == 43 and res[tp].timestamp == base + 4300
    assert c.offsets_for_times({tp: base + 10**9})[tp] is None
    assert c.beginning_offsets([tp])[tp] == 0 and c.end_offsets([tp])[tp] == 100
    c.assign([tp])
    c.seek(tp, 61)
    first = next(iter(c))
    assert (first.offset, first.value) == (61, b"61")
    c.close()


def test_admin_client_topics_and_configs(gregor):
    a = KafkaAdminClient(bootstrap_servers=gregor.addr)
    a.create_topics([NewTopic("pyadm", 3, 1, topic_configs={"retention.ms": "7200000"})])
    with pytest.raises(TopicAlreadyExistsError):
        a.create_topics([NewTopic("pyadm", 3, 1)])
    with pytest.raises(InvalidConfigurationError):
        a.create_topics([NewTopic("pybad", 1, 1, topic_configs={"no.such.config": "1"})])
    assert "pyadm" in a.list_topics()
    desc = a.describe_topics(["pyadm"])[0]
    assert len(desc["partitions"]) == 3

    def configs(config_filter="all"):
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "pyadm")], config_filter=config_filter)
        return {name: entry["value"] for name, entry in res["topic"]["pyadm"].items()}

    assert configs()["retention.ms"] == "7200000"
    assert configs("modified") == {"retention.ms": "7200000"}, "only the override is non-default"
    a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "pyadm", configs={"segment.ms": "60000"})])
    c = configs()
    assert c["segment.ms"] == "60000"
    assert c["retention.ms"] == "7200000", "kafka-python's alter_configs carries other overrides over"
    broker = a.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")], config_filter="all")
    assert {"log.retention.ms", "num.partitions", "message.max.bytes"} <= set(broker["broker"]["0"])
    a.create_partitions({"pyadm": NewPartitions(total_count=6)})
    assert len(a.describe_topics(["pyadm"])[0]["partitions"]) == 6
    a.delete_topics(["pyadm"])
    assert "pyadm" not in a.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        a.delete_topics(["pyadm"])
    a.close()


def test_idempotent_producer(gregor):
    p = KafkaProducer(bootstrap_servers=gregor.addr, enable_idempotence=True, acks="all", linger_ms=5)
    futures = [p.send("idem-py", value=f"{i}".encode()) for i in range(2000)]
    assert [f.get(timeout=30).offset for f in futures] == list(range(2000))
    p.close()
    msgs = consume_all(gregor.addr, "idem-py", 2000)
    assert [m.value for m in msgs] == [f"{i}".encode() for i in range(2000)]


def test_restart_keeps_topics_and_data(gregor):
    kcat("-b", gregor.addr, "-P", "-t", "persist", input=b"one\ntwo\nthree\n")
    assert gregor.stop() == 0
    assert "stopped cleanly" in gregor.log()
    gregor.start()
    out = kcat("-b", gregor.addr, "-C", "-t", "persist", "-e", "-f", "%s\\n").decode().splitlines()
    assert out == ["one", "two", "three"]
    time.sleep(0.1)
