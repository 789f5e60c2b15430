"""/metrics of a running broker after real traffic, parsed with
prometheus_client's exposition-format parser: the counters move by exactly
what the clients did."""

import urllib.request

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import MessageSizeTooLargeError
from prometheus_client.parser import text_string_to_metric_families


def scrape(g):
    with urllib.request.urlopen(f"http://{g.metrics_addr}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """Sum over samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def produce(addr, topic, n):
    p = KafkaProducer(bootstrap_servers=addr, acks="all", linger_ms=5)
    for i in range(n):
        p.send(topic, value=f"record-{i:04}".encode(), partition=0)
    p.flush()
    p.close()


def consume(addr, topic, group, n):
    c = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=15000)
    got = 0
    for _ in c:
        got += 1
        if got == n:
            break
    c.commit()
    c.close()
    return got


def test_metrics_move_by_the_right_amounts(gregor):
    assert gregor.metrics_addr, "the broker did not report its metrics listener"
    before = scrape(gregor)
    produce(gregor.addr, "metered", 100)
    assert consume(gregor.addr, "metered", "mg", 100) == 100
    s = scrape(gregor)
    assert value(s, "gregor_topic_records_in_total", topic="metered") == 100
    bytes_in = value(s, "gregor_topic_bytes_in_total", topic="metered")
    assert bytes_in > 100 * 11
    assert value(s, "gregor_topic_bytes_out_total", topic="metered") >= bytes_in
    assert value(s, "gregor_partition_log_end_offset", topic="metered", partition="0") == 100
    assert value(s, "gregor_partition_log_start_offset", topic="metered", partition="0") == 0
    assert value(s, "gregor_partition_size_bytes", topic="metered", partition="0") >= bytes_in
    assert value(s, "gregor_partition_segments", topic="metered", partition="0") == 1
    produces = total(s, "gregor_requests_total", api="Produce") - total(before, "gregor_requests_total", api="Produce")
    assert produces >= 1
    assert total(s, "gregor_request_duration_seconds_count", api="Produce") == total(s, "gregor_requests_total", api="Produce")
    assert total(s, "gregor_requests_total", api="Fetch") >= 1
    assert value(s, "gregor_consumer_group_lag_records", group="mg", topic="metered", partition="0") == 0
    assert total(s, "gregor_consumer_groups", type="classic") >= 1
    assert value(s, "gregor_process_resident_memory_bytes") > 0
    assert value(s, "gregor_process_open_fds") > 0

    produce(gregor.addr, "metered", 50)
    s2 = scrape(gregor)
    assert value(s2, "gregor_topic_records_in_total", topic="metered") == 150
    assert value(s2, "gregor_consumer_group_lag_records", group="mg", topic="metered", partition="0") == 50

    # A rejected batch is counted under its error code (10 = MESSAGE_TOO_LARGE).
    p = KafkaProducer(bootstrap_servers=gregor.addr, max_request_size=4_000_000, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        p.send("metered", value=b"x" * 2_000_000, partition=0).get(timeout=30)
    p.close()
    s3 = scrape(gregor)
    assert value(s3, "gregor_request_errors_total", api="Produce", error_code="10") == 1
    assert value(s3, "gregor_topic_records_in_total", topic="metered") == 150


def test_metrics_404_and_off_switch(gregor_factory):
    g = gregor_factory()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{g.metrics_addr}/nope", timeout=10)
    assert e.value.code == 404
    off = gregor_factory({"GREGOR_METRICS_ENABLED": "false"})
    assert off.metrics_addr is None
