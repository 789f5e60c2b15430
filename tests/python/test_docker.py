"""The container image: build it, run it, produce and consume through the
published port, scrape /metrics, stop it with SIGTERM, start it again on the
same volume and read the data back. Skipped (with the reason) where no
Docker engine answers."""

import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]


def docker(*args, check=True, timeout=120):
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {r.stderr}")
    return r.stdout.strip()


def engine_answers():
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not engine_answers(), reason="no Docker engine answers `docker info`; container test skipped")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


def read_all(addr, topic, n):
    c = KafkaConsumer(bootstrap_servers=addr, consumer_timeout_ms=15000, enable_auto_commit=False)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    out = []
    for m in c:
        out.append(m.value)
        if len(out) == n:
            break
    c.close()
    return out


def test_image_runs_serves_metrics_stops_cleanly_and_keeps_data():
    build = subprocess.run(["make", "docker"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    kafka_port, metrics_port = free_port(), free_port()
    name = f"gregor-test-{uuid.uuid4().hex[:8]}"
    cid = docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{kafka_port}:9092", "-p", f"127.0.0.1:{metrics_port}:9644",
                 "-e", f"GREGOR_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{kafka_port}", "gregor:latest")
    addr = f"127.0.0.1:{kafka_port}"
    try:
        assert wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", cid) == "healthy", 60), docker("logs", cid, check=False)
        p = KafkaProducer(bootstrap_servers=addr, acks="all")
        for i in range(100):
            p.send("in-docker", value=f"v{i}".encode(), partition=0)
        p.flush()
        p.close()
        assert read_all(addr, "in-docker", 100) == [f"v{i}".encode() for i in range(100)]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'gregor_topic_records_in_total{topic="in-docker"} 100' in metrics

        docker("stop", "-t", "40", cid, timeout=90)
        assert docker("inspect", "-f", "{{.State.ExitCode}}", cid) == "0"
        logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stderr
        assert "SIGTERM received" in logs and "stopped cleanly" in logs, logs[-2000:]

        docker("start", cid)
        assert wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", cid) == "healthy", 60)
        assert read_all(addr, "in-docker", 100) == [f"v{i}".encode() for i in range(100)], "data survived on the volume"
    finally:
        docker("rm", "-f", "-v", cid, check=False)
