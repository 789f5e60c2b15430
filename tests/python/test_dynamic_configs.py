"""Dynamic broker configs: changed at runtime with IncrementalAlterConfigs and
AlterConfigs from two independent clients (kafka-python and librdkafka via
confluent-kafka; neither can name the cluster-default resource "", which
tests/tests/broker_configs.rs covers), visible through DescribeConfigs with the right source,
in effect at once, and kept across a restart."""

import time
import urllib.request

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource as CkResource,
                                   ConfigSource, ResourceType)
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import MessageSizeTooLargeError
from prometheus_client.parser import text_string_to_metric_families

BROKER = ConfigResourceType.BROKER
DYNAMIC_BROKER, DYNAMIC_DEFAULT, DEFAULT = "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG", "DEFAULT_CONFIG"


def describe(admin, rtype, name):
    res = admin.describe_configs([ConfigResource(rtype, name)], config_filter="all")
    return res[rtype.name.lower()][name]


def produce_one(addr, topic, size):
    p = KafkaProducer(bootstrap_servers=addr, acks="all", retries=0)
    try:
        return p.send(topic, value=b"x" * size).get(timeout=10)
    finally:
        p.close()


def segments(gregor, topic):
    return sorted((gregor.data_dir / f"{topic}-0").glob("*.log"))


def test_kafka_python_changes_broker_configs_at_runtime_and_they_persist(gregor):
    a = KafkaAdminClient(bootstrap_servers=gregor.addr)
    b = describe(a, BROKER, "0")
    assert (b["log.retention.ms"]["read_only"], b["log.retention.ms"]["config_source"]) == (False, DEFAULT)
    assert b["num.partitions"]["read_only"] is True, "static configs are read-only"
    a.create_topics([NewTopic("dyn", 1, 1)])
    assert produce_one(gregor.addr, "dyn", 3000).offset == 0

    # IncrementalAlterConfigs (kafka-python picks it when ApiVersions offers it).
    res = a.alter_configs([ConfigResource(BROKER, "0", configs={"message.max.bytes": "2000", "log.segment.bytes": "4096"})])
    assert res == {"broker": {"0": "OK"}}
    b = describe(a, BROKER, "0")
    assert (b["message.max.bytes"]["value"], b["message.max.bytes"]["config_source"]) == ("2000", DYNAMIC_BROKER)
    t = describe(a, ConfigResourceType.TOPIC, "dyn")
    assert (t["max.message.bytes"]["value"], t["max.message.bytes"]["config_source"]) == ("2000", DYNAMIC_BROKER), \
        "a topic without an override follows the dynamic default"
    with pytest.raises(MessageSizeTooLargeError):
        produce_one(gregor.addr, "dyn", 3000)
    for _ in range(12):
        produce_one(gregor.addr, "dyn", 1000)
    assert len(segments(gregor, "dyn")) >= 3, "the new log.segment.bytes rolls the existing partition's segments"

    # Refusals name the reason, with INVALID_REQUEST as Kafka answers for broker resources.
    res = a.alter_configs([ConfigResource(BROKER, "0", configs={"num.partitions": "3"})], raise_on_unknown=False)
    assert "InvalidRequest" in res["broker"]["0"] and "Cannot update these configs dynamically" in res["broker"]["0"]
    res = a.alter_configs([ConfigResource(BROKER, "0", configs={"log.retention.ms": "-7"})])
    assert "InvalidRequest" in res["broker"]["0"] and "log.retention.ms" in res["broker"]["0"]
    res = a.alter_configs([ConfigResource(BROKER, "0", configs={"log.retention.ms": "5"})], validate_only=True)
    assert res == {"broker": {"0": "OK"}}
    assert describe(a, BROKER, "0")["log.retention.ms"]["config_source"] == DEFAULT, "validate_only changes nothing"

    a.close()

    gregor.stop()
    gregor.start()
    a = KafkaAdminClient(bootstrap_servers=gregor.addr)
    b = describe(a, BROKER, "0")
    assert (b["message.max.bytes"]["value"], b["message.max.bytes"]["config_source"]) == ("2000", DYNAMIC_BROKER)
    with pytest.raises(MessageSizeTooLargeError):
        produce_one(gregor.addr, "dyn", 3000)

    # DELETE returns to the built-in default.
    assert a.reset_configs([ConfigResource(BROKER, "0", configs=["message.max.bytes"])]) == {"broker": {"0": "OK"}}
    assert describe(a, BROKER, "0")["message.max.bytes"]["config_source"] == DEFAULT
    assert produce_one(gregor.addr, "dyn", 3000).offset > 0

    # Legacy AlterConfigs replaces the whole set of the resource's dynamic configs.
    res = a.alter_configs([ConfigResource(BROKER, "0", configs={"log.roll.ms": "600000"})], incremental=False)
    assert res == {"broker": {"0": "OK"}}
    b = describe(a, BROKER, "0")
    assert b["log.roll.ms"]["config_source"] == DYNAMIC_BROKER
    assert b["log.segment.bytes"]["config_source"] == DYNAMIC_BROKER, "kafka-python carries the other dynamic values over"
    a.close()


def flushes(g):
    with urllib.request.urlopen(f"http://{g.metrics_addr}/metrics", timeout=10) as r:
        text = r.read().decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "gregor_flush_duration_seconds_count":
                return s.value
    return 0.0


def test_librdkafka_incremental_alter_configs_and_synonyms(gregor_factory):
    g = gregor_factory({"GREGOR_LOG_FLUSH_INTERVAL_MS": "0"})
    admin = AdminClient({"bootstrap.servers": g.addr})

    def broker_configs():
        fut = admin.describe_configs([CkResource(ResourceType.BROKER, "0")])
        return next(iter(fut.values())).result(timeout=10)

    c = broker_configs()["log.flush.interval.ms"]
    assert (c.value, c.source, c.is_read_only) == ("0", ConfigSource.STATIC_BROKER_CONFIG.value, False)

    # With the periodic flush off, producing does not fsync.
    produce_one(g.addr, "flushed", 100)
    time.sleep(1.5)
    assert flushes(g) == 0

    entry = ConfigEntry("log.flush.interval.ms", "100", incremental_operation=AlterConfigOpType.SET)
    fut = admin.incremental_alter_configs([CkResource(ResourceType.BROKER, "0", incremental_configs=[entry])])
    next(iter(fut.values())).result(timeout=10)
    c = broker_configs()["log.flush.interval.ms"]
    assert (c.value, c.source) == ("100", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    produce_one(g.addr, "flushed", 100)
    deadline = time.time() + 10
    while flushes(g) == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert flushes(g) > 0, "the flusher picked up the new interval without a restart"

    bad = ConfigEntry("auto.create.topics.enable", "false", incremental_operation=AlterConfigOpType.SET)
    fut = admin.incremental_alter_configs([CkResource(ResourceType.BROKER, "0", incremental_configs=[bad])])
    with pytest.raises(KafkaException) as e:
        next(iter(fut.values())).result(timeout=10)
    assert "Cannot update these configs dynamically" in str(e.value)

    # Synonyms list every layer, highest precedence first (kafka-python keeps them as a list).
    kp = KafkaAdminClient(bootstrap_servers=g.addr)
    res = kp.describe_configs([ConfigResource(BROKER, "0")], include_synonyms=True, config_filter="all")
    syn = res["broker"]["0"]["log.flush.interval.ms"]["synonyms"]
    assert [(x["value"], x["source"]) for x in syn] == [
        ("100", "DYNAMIC_BROKER_CONFIG"), ("0", "STATIC_BROKER_CONFIG"), ("1000", "DEFAULT_CONFIG")]
    kp.close()


def test_append_and_subtract_edit_the_cleanup_policy_list(gregor):
    from confluent_kafka.admin import NewTopic
    admin = AdminClient({"bootstrap.servers": gregor.addr})
    admin.create_topics([NewTopic("listy", 1, 1)])["listy"].result(10)

    def alter(op, value):
        e = ConfigEntry("cleanup.policy", value, incremental_operation=op)
        fut = admin.incremental_alter_configs([CkResource(ResourceType.TOPIC, "listy", incremental_configs=[e])])
        next(iter(fut.values())).result(timeout=10)
        fut = admin.describe_configs([CkResource(ResourceType.TOPIC, "listy")])
        return next(iter(fut.values())).result(timeout=10)["cleanup.policy"].value

    assert alter(AlterConfigOpType.APPEND, "compact") == "delete,compact"
    assert alter(AlterConfigOpType.APPEND, "compact") == "delete,compact", "appending a present item changes nothing"
    assert alter(AlterConfigOpType.SUBTRACT, "delete") == "compact"
    bad = ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)
    fut = admin.incremental_alter_configs([CkResource(ResourceType.TOPIC, "listy", incremental_configs=[bad])])
    with pytest.raises(KafkaException) as e:
        next(iter(fut.values())).result(timeout=10)
    assert "not a list config" in str(e.value)
