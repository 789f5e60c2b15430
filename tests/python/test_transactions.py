"""Transactions with kafka-python (an independent client implementation):
commit and abort through the transaction coordinator, read_committed and
read_uncommitted consumers, and fencing by a second producer instance."""

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError


def values(addr, topic, isolation):
    c = KafkaConsumer(bootstrap_servers=addr, isolation_level=isolation, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=2000)
    c.assign([TopicPartition(topic, 0)])
    out = sorted(m.value.decode() for m in c)
    c.close()
    return out


def test_kafka_python_transactions(gregor):
    a = KafkaAdminClient(bootstrap_servers=gregor.addr)
    a.create_topics([NewTopic("pytx", 1, 1)])
    a.close()
    p = KafkaProducer(bootstrap_servers=gregor.addr, transactional_id="py-writer")
    p.init_transactions()
    p.begin_transaction()
    p.send("pytx", key=b"k", value=b"kept-1")
    p.send("pytx", key=b"k", value=b"kept-2")
    p.commit_transaction()
    p.begin_transaction()
    p.send("pytx", key=b"k", value=b"dropped").get(timeout=10)  # in the log, then aborted
    p.abort_transaction()
    assert values(gregor.addr, "pytx", "read_committed") == ["kept-1", "kept-2"]
    assert values(gregor.addr, "pytx", "read_uncommitted") == ["dropped", "kept-1", "kept-2"]

    p.begin_transaction()
    p.send("pytx", value=b"zombie").get(timeout=10)
    p2 = KafkaProducer(bootstrap_servers=gregor.addr, transactional_id="py-writer")
    p2.init_transactions()  # fences p and aborts its open transaction
    with pytest.raises(KafkaError):
        p.commit_transaction()
    p2.begin_transaction()
    p2.send("pytx", value=b"kept-3")
    p2.commit_transaction()
    assert values(gregor.addr, "pytx", "read_committed") == ["kept-1", "kept-2", "kept-3"]
    p.close(timeout=1)
    p2.close()

    from test_metrics import scrape, value
    m = scrape(gregor)
    ended = lambda result, cause: value(m, "gregor_transactions_ended_total", result=result, cause=cause)
    assert (ended("commit", "client"), ended("abort", "client"), ended("abort", "fenced")) == (2, 1, 1)
    assert value(m, "gregor_transactions", state="CompleteCommit") == 1


def test_kafka_python_lists_and_describes_transactions(gregor):
    from kafka.admin import TransactionState
    from kafka.errors import TransactionalIdNotFoundError
    a = KafkaAdminClient(bootstrap_servers=gregor.addr)
    a.create_topics([NewTopic("listed", 2, 1)])
    p = KafkaProducer(bootstrap_servers=gregor.addr, transactional_id="lister")
    p.init_transactions()
    p.begin_transaction()
    p.send("listed", value=b"x", partition=1).get(timeout=10)
    idle = KafkaProducer(bootstrap_servers=gregor.addr, transactional_id="idler")
    idle.init_transactions()

    listing = [t for ts in a.list_transactions().values() for t in ts]
    assert {(t.transactional_id, t.state) for t in listing} == {
        ("lister", TransactionState.ONGOING), ("idler", TransactionState.EMPTY)}
    ongoing = [t for ts in a.list_transactions(state_filters=["Ongoing"]).values() for t in ts]
    assert [t.transactional_id for t in ongoing] == ["lister"]
    by_pattern = [t for ts in a.list_transactions(transactional_id_pattern="id.*").values() for t in ts]
    assert [t.transactional_id for t in by_pattern] == ["idler"]

    d = a.describe_transactions(["lister"])["lister"]
    assert d.state == TransactionState.ONGOING
    assert d.topic_partitions == {TopicPartition("listed", 1)}
    assert d.transaction_start_time_ms > 0
    with pytest.raises(TransactionalIdNotFoundError):
        a.describe_transactions(["nobody"])
    p.commit_transaction()
    assert a.describe_transactions(["lister"])["lister"].state == TransactionState.COMPLETE_COMMIT
    p.close()
    idle.close()
    a.close()
