"""Helpers of the SmartSim suite: this checkout's server, free ports, process and file checks, and
the installed launcher started with an exact argv."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READY = re.compile(r"ready to accept connections (?:on \S+|at \S+)")


def server_bin() -> str:
    """This checkout's `redisai-fast` (in the server venv, not this one)."""
    return os.environ.get("REDISAI_FAST_BIN") or str(ROOT / ".venv" / "bin" / "redisai-fast")


def server_python() -> str:
    """The server venv's interpreter: it has the frameworks that make the test models."""
    return os.environ.get("REDISAI_FAST_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


def redisai_fast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([server_bin(), *args], capture_output=True, text=True, timeout=180, env=env, check=False)


def tree(path: Path) -> dict[str, tuple[int, str]]:
    """Every file, link and folder under `path` (mode and content hash), __pycache__ left out:
    what `uninstall` must give back exactly."""
    out: dict[str, tuple[int, str]] = {}
    if not path.exists():
        return out
    for p in sorted(path.rglob("*")):
        if "__pycache__" in p.parts:
            continue
        st = p.lstat()
        if p.is_symlink():
            what = "link:" + os.readlink(p)
        elif p.is_dir():
            what = "dir"
        else:
            what = hashlib.sha256(p.read_bytes()).hexdigest()
        out[str(p.relative_to(path))] = (st.st_mode, what)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(what, timeout: float = 30.0) -> bool:
    """Polls `what()` every 0.1 s until it is true or `timeout` passes (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.1)
    return bool(what())


def children_left(timeout: float = 30.0) -> list[str]:
    """This process's descendants still running after `timeout` (SmartSim's telemetry monitor
    exits after its cooldown), as 'pid cmdline'."""
    me = psutil.Process()

    def running() -> list[psutil.Process]:
        return [p for p in me.children(recursive=True) if not gone(p.pid)]

    wait_until(lambda: not running(), timeout)
    return [f"{p.pid} {' '.join(p.cmdline())[:200]}" for p in running()]


class Launched:
    """The installed bin/redis-server started with an exact argv (as SmartSim's entry points do),
    its output in a file; ready when it logs that it accepts connections."""

    def __init__(self, argv: list[str], cwd: Path, log: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.out = cwd / "launched.out"
        self.log_path = log or self.out
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        if not wait_until(lambda: bool(READY.search(self.log())) or self.proc.poll() is not None, 60):
            self.stop()
            raise RuntimeError(f"not ready after 60 s:\n{self.log()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.out.read_text()}\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
