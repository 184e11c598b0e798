"""`Server`: a redisai-fast server in a child process, started, reached and stopped from Python."""

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
from types import TracebackType

from redisai_fast._endpoint import Endpoint, OptionValue, connect_host, directives, free_port
from redisai_fast.errors import ServerStartError

# what the server prints when its port is taken (asyncio/uvloop's bind error)
_PORT_TAKEN = re.compile(r"address already in use", re.IGNORECASE)
_PROCESS_ID = re.compile(rb"process_id:(\d+)")
# the server's log line prefix (`pid:M 01 Dec 2026 10:00:00.000 W `)
_LOG_PREFIX = re.compile(r"^\d+:M \d\d \w{3} \d{4} [\d:.]+ [A-Z] ")


def _command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Server(Endpoint):
    """A redisai-fast server in a child process, ready to accept connections once the
    constructor returns.

    `Server(port=None, unixsocket=None, **options)`: `options` are the server's directives as
    keywords (`appendonly="yes"`, `threads_per_queue=2`, `save=""`; booleans are `yes`/`no`),
    passed on its command line as `--name value`. Without `port` the server gets a free port
    (chosen here, and chosen again if another process takes it first); `port=0` means no TCP
    listener (then give `unixsocket`). Without `dir` the server works in a temporary directory,
    removed by `stop()`, so nothing it writes outlives it.

    A server that does not start raises `ServerStartError` with the server's own message. The
    child is stopped by `stop()`, by leaving the `with` block, at interpreter exit, and, should
    this process die without any of those, by the child itself when its stdin (a pipe from this
    process) closes.

    >>> with Server() as server:
    ...     server.client().ping()
    True
    """

    start_timeout: float = 60.0
    """Seconds to wait for the server to accept connections."""
    stop_timeout: float = 30.0
    """Seconds to wait for a clean shutdown before the server is killed."""
    port_attempts: int = 5
    """How many free ports to try when another process takes the chosen one first."""

    def __init__(self, port: int | None = None, unixsocket: str | os.PathLike[str] | None = None, **options: OptionValue) -> None:
        if port == 0 and unixsocket is None:
            raise ValueError("port=0 means no TCP listener: give unixsocket= too")
        self._tmp = tempfile.mkdtemp(prefix="redisai-fast-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = Path(self._tmp) / "server.log"
        self.unixsocket = os.path.abspath(unixsocket) if unixsocket is not None else None
        self.host = connect_host(str(options["bind"]) if "bind" in options else None)
        self._password = str(options["requirepass"]) if options.get("requirepass") else None
        self.returncode: int | None = None
        pairs = directives(options)
        if "dir" not in options:
            pairs.insert(0, ("dir", self._tmp))
        if self.unixsocket is not None:
            pairs.append(("unixsocket", self.unixsocket))
        atexit.register(self.stop)
        try:
            self._start(port, pairs)
        except BaseException:
            self.stop()
            raise

    def _start(self, port: int | None, pairs: list[tuple[str, str]]) -> None:
        attempts = self.port_attempts if port is None else 1
        for attempt in range(attempts):
            self.port = free_port(self.host) if port is None else (port or None)
            argv = [sys.executable, "-m", "redisai_fast._child", "--port", str(self.port or 0)]
            for name, value in pairs:
                argv += [f"--{name}", value]
            try:
                self._launch(argv)
                return
            except ServerStartError as exc:
                if port is not None or attempt + 1 == attempts or not _PORT_TAKEN.search(exc.output):
                    raise

    def _launch(self, argv: list[str]) -> None:
        log = open(self._log_path, "ab")  # noqa: SIM115 (the child writes it until it exits)
        start = log.tell()
        try:
            self._proc = subprocess.Popen(
                argv, cwd=self._tmp, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                output = self._log_path.read_bytes()[start:].decode(errors="replace")
                lines = [line for line in output.splitlines() if line.strip()]
                message = _LOG_PREFIX.sub("", lines[-1]) if lines else f"the server exited with status {code}"
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
                self._proc = None
                raise ServerStartError(message, output, code)
            if self._probe() == self._proc.pid:
                return
            if time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise ServerStartError(f"the server did not accept connections within {self.start_timeout} s", output)
            time.sleep(0.01)

    def _probe(self) -> int | None:
        """The process id of the server answering at our address, or None (nothing answers yet)."""
        try:
            if self.port:
                sock = socket.create_connection((self.host, self.port), timeout=2)
            elif self.unixsocket is not None and os.path.exists(self.unixsocket):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(2)
                sock.connect(self.unixsocket)
            else:
                return None
        except OSError:
            return None
        with sock:
            try:
                if self._password:
                    sock.sendall(_command("AUTH", self._password))
                    sock.recv(256)
                sock.sendall(_command("INFO", "server"))
                data = b""
                while b"process_id:" not in data or not data.endswith(b"\r\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                return None
        m = _PROCESS_ID.search(data)
        return int(m.group(1)) if m else None

    @property
    def pid(self) -> int | None:
        """The server's process id (None once stopped)."""
        return self._proc.pid if self._proc is not None else None

    def output(self) -> str:
        """Everything the server printed so far (its log)."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Shuts the server down cleanly (SIGTERM: it saves per its `save` rules and syncs its
        log), kills it if it takes longer than `stop_timeout`, and removes its temporary directory.
        Calling it again does nothing."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
            self.returncode = proc.returncode
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Server:  # noqa: PYI034
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"port={self.port}" if self.port else f"unixsocket={self.unixsocket!r}"
        state = f"pid={self.pid}" if self._proc is not None else "stopped"
        return f"<redisai_fast.Server {where} {state}>"
