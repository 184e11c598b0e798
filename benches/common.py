"""Shared benchmark plumbing: start redis-server and redisai-fast side by side, describe the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess

LOADGEN = ROOT / "target" / "release" / "loadgen"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A Debian redis-server with persistence off, stopped by PID."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


def interleaved(ours, theirs, repeat: int) -> tuple[float, float]:
    """Runs the two measurements alternately `repeat` times; the median of each (the machines
    are shared and noisy: alternating spreads a slow spell over both sides)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(ours())
        b.append(theirs())
    return statistics.median(a), statistics.median(b)


def build_loadgen() -> None:
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadgen"], cwd=ROOT, check=True)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    from redisai_fast import __version__

    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} x{os.cpu_count()}",
        "python": platform.python_version(),
        "redis-server": redis_v.split(" sha=")[0],
        "redisai-fast": __version__,
    }


def write_json(suite: str, machine_info: dict[str, str], rows: list[dict]) -> None:
    """The rows of a suite for the report (`benches/run.py` sets BENCH_JSON; alone, nothing is written)."""
    path = os.environ.get("BENCH_JSON")
    if path:
        Path(path).write_text(json.dumps({"suite": suite, "machine": machine_info, "rows": rows}, indent=1))


__all__ = ["LOADGEN", "ROOT", "RedisServer", "ServerProcess", "build_loadgen", "free_port", "interleaved", "machine",
           "write_json"]
