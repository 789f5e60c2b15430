"""Starts the real gregor binary for each test, on an ephemeral port with a
temporary data directory, and stops it by PID."""

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gregor_bin():
    path = Path(os.environ.get("GREGOR_BIN", ROOT / "target" / "debug" / "gregor"))
    if not path.exists():
        pytest.fail(f"{path} not found: run `cargo build -p gregor-server` (make test does) or set GREGOR_BIN")
    return str(path)


class Gregor:
    def __init__(self, tmp_path, env=None):
        self.data_dir = tmp_path / "data"
        self.log_path = tmp_path / "gregor.log"
        self.extra_env = env or {}
        self.proc = None
        self.addr = None
        self.metrics_addr = None
        self.start()

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "RUST_LOG": "info",
            "GREGOR_LISTENERS": "PLAINTEXT://127.0.0.1:0",
            "GREGOR_METRICS_LISTENER": "127.0.0.1:0",
            "GREGOR_LOG_DIRS": str(self.data_dir),
            **self.extra_env,
        }
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([gregor_bin()], env=env, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.data_dir.parent)
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line.startswith("gregor metrics on "):
                self.metrics_addr = line.removeprefix("gregor metrics on ")
            if line.startswith("gregor listening on "):
                self.addr = line.removeprefix("gregor listening on ")
                break
        else:
            raise RuntimeError("gregor exited before listening:\n" + self.log())
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=40)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code


@pytest.fixture
def gregor(tmp_path):
    g = Gregor(tmp_path)
    yield g
    g.stop(signal.SIGKILL)


@pytest.fixture
def gregor_factory(tmp_path):
    started = []

    def make(env=None):
        d = tmp_path / f"b{len(started)}"
        d.mkdir()
        g = Gregor(d, env)
        started.append(g)
        return g

    yield make
    for g in started:
        g.stop(signal.SIGKILL)
