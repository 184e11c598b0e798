"""Starts a real redisai-fast process on a free port and stops it by its PID (stdlib only)."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = re.compile(r"ready to accept connections on ([\d.:a-f]+):(\d+)")
READY_UNIX = re.compile(r"ready to accept connections at (\S+)")


def server_binary() -> str:
    """The `redisai-fast` entry point: $REDISAI_FAST_BIN, else next to this interpreter."""
    env = os.environ.get("REDISAI_FAST_BIN")
    if env:
        return env
    here = Path(sys.executable).parent / "redisai-fast"
    if here.exists():
        return str(here)
    found = shutil.which("redisai-fast")
    if not found:
        raise RuntimeError("redisai-fast is not installed: run `make test`")
    return found


class ServerProcess:
    """A redisai-fast server in a subprocess. `--port auto` lets it pick a free port, read from its
    log. A first argument that is not an option is the config file, as for redis-server."""

    def __init__(self, *args: str, cwd: str | None = None, env: dict[str, str] | None = None, tcp: bool = True,
                 auto_port: bool = True) -> None:
        """`tcp=False`: no `--port auto` (give `--port 0 --unixsocket PATH`); ready when the socket is.
        `auto_port=False`: the arguments give the port (ready when the TCP listener is)."""
        self.args = list(args)
        self.tcp = tcp
        self.auto_port = auto_port and tcp
        self.unixsocket = ""
        self.cwd = cwd or tempfile.mkdtemp(prefix="redisai-fast-test-")
        if cwd is None:
            # a directory of our own goes when the test run ends (tests read logs after stop())
            atexit.register(shutil.rmtree, self.cwd, True)
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = Path(self.cwd) / "server.log"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        head = self.args[:1] if self.args and not self.args[0].startswith("-") else []
        port = ["--port", "auto"] if self.auto_port else []
        cmd = [server_binary(), *head, *port, *self.args[len(head):]]
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (the server writes it until stop())
        start_at = self._log.tell()  # a restart in the same directory appends: read only this run's lines
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        atexit.register(self.kill)  # never outlive the test run, even when a test fails before stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[start_at:].decode(errors="replace")
            m = READY.search(text) if self.tcp else READY_UNIX.search(text)
            if m:
                if self.tcp:
                    self.port = int(m.group(2))
                else:
                    self.unixsocket = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_path.read_text(errors='replace')}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def raw(self) -> RawConnection:
        return RawConnection(self.port)

    def __enter__(self) -> ServerProcess:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawConnection:
    """A plain socket speaking bytes, for protocol-level tests."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_until(self, n: int) -> bytes:
        """Reads exactly n bytes."""
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed after {len(self.buf)} of {n} bytes: {self.buf[:200]!r}")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_reply(self) -> object:
        """Parses one RESP2/RESP3 reply (errors come back as `Err`)."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b"("):
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b",":
            return ("double", rest.decode())
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self.recv_until(n + 2)[:-2]
            return data
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        if t == b"%":
            n = int(rest)
            return {"map": [(self.read_reply(), self.read_reply()) for _ in range(n)]}
        raise ValueError(f"bad reply line {line!r}")

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, *args: bytes | str | int) -> object:
        self.send(encode(*args))
        return self.read_reply()

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True when the server closed the connection (EOF) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


class Err(str):
    """An error reply read by RawConnection."""


def encode(*args: bytes | str | int) -> bytes:
    """RESP multibulk encoding of a command."""
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)
