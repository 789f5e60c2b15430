#!/usr/bin/env python3
"""`make bench`: start a release gregor on a temporary data directory, drive it
with gregor-loadgen (librdkafka), and print throughput, latency, and the
broker's CPU seconds and peak RSS per scenario. Figures, not a pass/fail test."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GREGOR = ROOT / "target" / "release" / "gregor"
LOADGEN = ROOT / "target" / "release" / "gregor-loadgen"
TICKS = os.sysconf("SC_CLK_TCK")


def broker_cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def broker_peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_broker(data_dir):
    env = {"PATH": os.environ["PATH"], "RUST_LOG": "warn", "GREGOR_LISTENERS": "PLAINTEXT://127.0.0.1:0",
           "GREGOR_METRICS_LISTENER": "127.0.0.1:0",
           "GREGOR_LOG_DIRS": str(data_dir)}
    proc = subprocess.Popen([str(GREGOR)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    while line.startswith("gregor metrics on "):
        line = proc.stdout.readline().decode()
    if not line.startswith("gregor listening on "):
        raise SystemExit("gregor did not start")
    return proc, line.strip().removeprefix("gregor listening on ")


def run(addr, pid, *args):
    cpu0 = broker_cpu(pid)
    out = subprocess.run([str(LOADGEN), args[0], addr, *map(str, args[1:])], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(f"loadgen {' '.join(map(str, args))} failed")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["broker_cpu_s"] = round(broker_cpu(pid) - cpu0, 2)
    r["broker_peak_rss_mib"] = round(broker_peak_rss_mib(pid), 1)
    return r


def show(r):
    if r["mode"] == "produce":
        print(f"produce  {r['partitions']}p acks={r['acks']:<3} {r['size']:>5}B x {r['records']:>8}: "
              f"{r['records_per_s']:>10,.0f} rec/s {r['mb_per_s']:>7.1f} MB/s  p50 {r['p50_ms']:6.2f} ms  "
              f"p99 {r['p99_ms']:7.2f} ms  cpu broker {r['broker_cpu_s']:5.2f}s client {r['client_cpu_s']:5.2f}s  "
              f"rss {r['broker_peak_rss_mib']} MiB")
    elif r["mode"] == "consume":
        print(f"consume  {r['topic']:<18} {r['records']:>8}: {r['records_per_s']:>10,.0f} rec/s {r['mb_per_s']:>7.1f} MB/s"
              f"  cpu broker {r['broker_cpu_s']:5.2f}s client {r['client_cpu_s']:5.2f}s  rss {r['broker_peak_rss_mib']} MiB")
    elif r["mode"] == "txn":
        print(f"txn      {r['topic']:<18} {r['transactions']:>6} x {r['records'] // r['transactions']:>6}: "
              f"{r['records_per_s']:>10,.0f} rec/s {r['mb_per_s']:>7.1f} MB/s  {r['commits_per_s']:>7,.0f} commits/s  "
              f"commit p50 {r['commit_p50_ms']:.2f} ms p99 {r['commit_p99_ms']:.2f} ms  cpu broker {r['broker_cpu_s']:5.2f}s "
              f"client {r['client_cpu_s']:5.2f}s  rss {r['broker_peak_rss_mib']} MiB")
    else:
        print(f"e2e      {r['rate']}/s x {r['records']}: p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  max {r['max_ms']:.2f} ms"
              f"  cpu broker {r['broker_cpu_s']:5.2f}s  rss {r['broker_peak_rss_mib']} MiB")
    sys.stdout.flush()


def group_bench(addr, pid, members=10):
    """Time from the first JoinGroup of 10 members to all having an
    assignment, then OffsetCommit requests/s from one client."""
    import threading
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": addr})
    for f in admin.create_topics([NewTopic("bench-group", members, 1)]).values():
        f.result(10)
    cpu0 = broker_cpu(pid)
    assigned = {}
    stop = threading.Event()
    start = time.time()

    def member(i):
        c = Consumer({"bootstrap.servers": addr, "group.id": "bench-group", "enable.auto.commit": False})
        c.subscribe(["bench-group"], on_assign=lambda _c, parts: parts and assigned.setdefault(i, time.time()))
        while not stop.is_set():
            c.poll(0.05)
        c.close()

    threads = [threading.Thread(target=member, args=(i,)) for i in range(members)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while len(assigned) < members and time.time() < deadline:
        time.sleep(0.01)
    rebalance_ms = (max(assigned.values()) - start) * 1000 if len(assigned) == members else float("nan")
    stop.set()
    for t in threads:
        t.join()

    done = threading.Semaphore(0)
    c = Consumer({"bootstrap.servers": addr, "group.id": "bench-commits", "enable.auto.commit": False,
                  "on_commit": lambda err, parts: done.release()})
    n = 20000
    t0 = time.time()
    for i in range(n):
        c.commit(offsets=[TopicPartition("bench-group", 0, i + 1)], asynchronous=True)
        c.poll(0)
    for _ in range(n):
        while not done.acquire(timeout=0.01):
            c.poll(0.01)
    secs = time.time() - t0
    c.close()
    print(f"groups   {members} members: rebalance to full assignment {rebalance_ms:.0f} ms "
          f"(initial delay 3000 ms, target < 6100 ms); {n} async OffsetCommits {n / secs:,.0f}/s; "
          f"cpu broker {broker_cpu(pid) - cpu0:.2f}s")
    sys.stdout.flush()


def main():
    n = int(os.environ.get("BENCH_RECORDS", "1000000"))
    with tempfile.TemporaryDirectory() as tmp:
        proc, addr = start_broker(Path(tmp) / "data")
        try:
            for parts in (1, 6):
                for acks in ("1", "all"):
                    topic = f"bench-{parts}p-acks{acks}"
                    show(run(addr, proc.pid, "produce", topic, parts, n, 100, acks))
                    show(run(addr, proc.pid, "consume", topic, parts, n))
            show(run(addr, proc.pid, "produce", "bench-1k", 1, max(n // 5, 1000), 1024, "1"))
            show(run(addr, proc.pid, "consume", "bench-1k", 1, max(n // 5, 1000)))
            show(run(addr, proc.pid, "e2e", "bench-e2e", 1000, 5))
            show(run(addr, proc.pid, "txn", "bench-txn-big", 6, 100, max(n // 100, 10), 100))
            show(run(addr, proc.pid, "consume", "bench-txn-big", 6, 100 * max(n // 100, 10)))
            show(run(addr, proc.pid, "txn", "bench-txn-small", 1, 500, 1, 100))
            group_bench(addr, proc.pid)
            print(f"broker total cpu {broker_cpu(proc.pid):.2f}s, peak rss {broker_peak_rss_mib(proc.pid):.1f} MiB")
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
