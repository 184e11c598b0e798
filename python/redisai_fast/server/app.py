"""Runs the server: builds the Rust core, listens with uvloop (TCP, and TLS on `tls-port`), serves
the metrics and health endpoints, expires keys, shuts down cleanly.

Per-command work never happens here: each connection is a Rust `Connection` protocol object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import uvloop

from redisai_fast import __version__, _core
from redisai_fast.backends import PACKAGE_DIR, BackendError, Options
from redisai_fast.server import workers
from redisai_fast.server.http import HealthState, serve_http
from redisai_fast.server.workers import Executor

log = logging.getLogger("redisai_fast")

EXPIRE_PERIOD_S = 0.1
SWEEP_PERIOD_S = 0.01
CRON_PERIOD_S = 1.0


class ListenError(OSError):
    """A listener could not be opened (the message is Redis's)."""


class App:
    """One running server: the core, its listeners and the shutdown signal."""

    def __init__(self, options: list[tuple[str, str | list[str]]], backends: list[tuple[str, str]] | None = None) -> None:
        # the core holds the SHUTDOWN callback weakly: an App (and its keyspace) can be freed
        # once nothing else holds it (an in-process database that was closed)
        on_shutdown = weakref.WeakMethod(self._on_shutdown_command)

        def shutdown_requested(mode: str) -> None:
            method = on_shutdown()
            if method is not None:
                method(mode)

        self.core = _core.Server(options, shutdown_requested)
        self.backends = backends or []
        self.unixsocket = ""
        self.store_node: Any = None
        if not self.core.config_get("backendspath"):
            self.core.set_option("backendspath", str(PACKAGE_DIR))
        self.stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.shutdown_mode = "default"
        self.health = HealthState()
        self.tls_port = int(self.core.config_get("tls-port") or 0)
        self.tls_servers: list[asyncio.AbstractServer] = []
        if self.tls_port:
            # TLS runs in the core (rustls): certificates and options are checked now
            self.core.enable_tls()

        def num(name: str) -> int:
            return int(self.core.config_get(name) or 0)

        self.executor = Executor(
            self.core,
            Options(
                intra_op_parallelism=num("intra_op_parallelism"),
                inter_op_parallelism=num("inter_op_parallelism"),
                model_execution_timeout_ms=num("model_execution_timeout"),
                backend_memory_limit_mb=num("backend_memory_limit"),
            ),
            threads_per_queue=num("threads_per_queue"),
            backends_path=self.core.config_get("backendspath") or "",
        )

    def _on_shutdown_command(self, mode: str) -> None:
        log.warning("User requested shutdown (%s)", mode)
        self.shutdown_mode = mode
        if self.stopping is not None:
            self.stopping.set()

    def _expire_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.core.expire_cycle()
        loop.call_later(EXPIRE_PERIOD_S, self._expire_tick, loop)

    def _sweep_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.core.sweep()
        self.core.service()
        loop.call_later(SWEEP_PERIOD_S, self._sweep_tick, loop)

    def _cron_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.core.cron()
        if self.store_node is not None and not self.store_node.alive() and self.stopping is not None:
            log.warning("The store node exited (%s): shutting down", self.store_node.log_tail(3))
            self.stopping.set()
        loop.call_later(CRON_PERIOD_S, self._cron_tick, loop)

    def _start_busy_polling(self, loop: asyncio.AbstractEventLoop) -> None:
        """Busy polling (`busy-poll-us`): the core schedules `tick` when a client was served; while
        a callback is scheduled uvloop polls its sockets without sleeping, and `tick` schedules
        itself again for as long as the core wants the loop awake."""
        call_soon, keep_polling = loop.call_soon, self.core.keep_polling

        def tick() -> None:
            if keep_polling():
                call_soon(tick)

        self.core.set_busy_poller(call_soon, tick)

    def load_backends(self) -> None:
        """Backends named at start (`--loadmodule redisai.so TORCH <path>`), loaded now as RedisAI
        loads them; a failure stops the start."""
        for name, path in self.backends:
            try:
                self.executor.registry.load_from_path(name, path, self.core.config_get("backendspath") or "")
            except BackendError as exc:
                raise ValueError(f"backend {name} ({path}) could not be loaded: {exc.message}") from None

    def load_data(self) -> None:
        """Loads the AOF or snapshot before any client is accepted (models and scripts are loaded
        into their frameworks now, so they are ready to run); then opens the AOF. In store mode
        the keys are the store's (and so is durability): it connects instead."""
        if self.core.config_get("cluster-enabled") == "yes":
            # the store node beside this node holds the keys; its persistence is the node's settings
            from redisai_fast.server.store_node import StoreNode

            self.store_node = StoreNode(self.core)
            self.core.set_option("store", self.store_node.start())
            self.core.set_option("appendonly", "no")
            self.core.set_option("save", "")
            log.warning("%s", self.core.connect_store())
            return
        if self.core.config_get("store"):
            if self.core.config_get("appendonly") == "yes":
                raise ValueError("appendonly yes cannot be combined with store: durability is the store's")
            self.core.set_option("save", "")
            log.warning("%s", self.core.connect_store())
            return
        t0 = time.monotonic()
        summary = self.core.load_data(self.executor.run_job)
        log.warning("%s in %.2f s", summary, time.monotonic() - t0)
        self.core.start_persistence()

    async def listen(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.AbstractServer]:
        """The TCP listeners (`bind`, `port`; `port 0`: none) and the Unix socket (`unixsocket`,
        `unixsocketperm`). An address written `-addr` is skipped when it cannot be bound, as in
        Redis; `*` is every IPv4 address and `::*` every IPv6 one."""
        servers: list[asyncio.AbstractServer] = []
        port_text = self.core.config_get("port") or "6379"
        port = 0 if port_text == "auto" else int(port_text)
        if port or port_text == "auto":
            for addr in (self.core.config_get("bind") or "127.0.0.1").split():
                optional, host = addr.startswith("-"), addr.lstrip("-")
                host = {"*": "0.0.0.0", "::*": "::"}.get(host, host)
                try:
                    server = await loop.create_server(
                        self.core.new_connection, host=host, port=port, reuse_address=True, backlog=511
                    )
                except OSError as exc:
                    if optional:
                        log.warning("Skipping optional address %s: %s", host, exc.strerror)
                        continue
                    raise ListenError(f"Could not create server TCP listening socket {host}:{port}: {exc.strerror}") from None
                servers.append(server)
                bound = server.sockets[0].getsockname()[1]
                if port == 0:
                    port = bound  # `auto`: every address gets the port the first one was given
                    self.core.set_bound_port(bound)
        path = self.core.config_get("unixsocket") or ""
        if path:
            # a stale socket file of an earlier run is replaced, as Redis does
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            try:
                server = await loop.create_unix_server(self.core.new_connection, path=path, backlog=511)
            except OSError as exc:
                raise ListenError(f"Failed opening Unix socket: {exc.strerror} ({path})") from None
            perm = int(self.core.config_get("unixsocketperm") or "0", 8)
            if perm:
                os.chmod(path, perm)
            self.unixsocket = path
            servers.append(server)
        if self.tls_port:
            for addr in (self.core.config_get("bind") or "127.0.0.1").split():
                optional, host = addr.startswith("-"), addr.lstrip("-")
                host = {"*": "0.0.0.0", "::*": "::"}.get(host, host)
                try:
                    server = await loop.create_server(
                        self.core.new_tls_connection, host=host, port=self.tls_port, reuse_address=True, backlog=511
                    )
                except OSError as exc:
                    if optional:
                        continue
                    raise ListenError(
                        f"Could not create server TLS listening socket {host}:{self.tls_port}: {exc.strerror}"
                    ) from None
                self.tls_servers.append(server)
                servers.append(server)
        if not servers:
            raise ListenError("Configured to not listen anywhere, exiting.")
        return servers

    def stop_soon(self, mode: str = "default") -> None:
        """Asks `serve` to shut down (from any thread), as SHUTDOWN with `mode` would."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop, mode)

    def _stop(self, mode: str) -> None:
        self.shutdown_mode = mode
        if self.stopping is not None:
            self.stopping.set()

    async def serve(self, listen: bool = True, on_ready: Callable[[], None] | None = None) -> None:
        """Serves until SHUTDOWN, a signal or `stop_soon`. Without `listen` it accepts no
        connections (an in-process database); `on_ready` is called once it is serving."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.stopping = asyncio.Event()
        workers.current.core = self.core  # inline runs of scripts happen on this thread
        self.executor.start()
        self.load_backends()
        metrics = await self._start_http(loop)
        self.load_data()
        self.health.loaded = True
        servers = await self.listen(loop) if listen else []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_reader(self.core.completion_fd(), self.core.drain_completions)
        loop.call_later(CRON_PERIOD_S, self._cron_tick, loop)
        loop.call_later(EXPIRE_PERIOD_S, self._expire_tick, loop)
        loop.call_later(SWEEP_PERIOD_S, self._sweep_tick, loop)
        self._start_busy_polling(loop)
        self.core.set_store_loop(loop.add_reader, loop.remove_reader, self.core.store_readable)
        self.core.store_announce()
        ignored = self.core.ignored_directives()
        if self.store_node is not None:
            # the store node takes these: they are not without effect here
            from redisai_fast.server.store_node import PASSED_ON

            ignored = [d for d in ignored if d not in PASSED_ON]
        if ignored:
            log.warning("Accepted without effect in redisai-fast (redis.conf directives): %s", " ".join(ignored))
        for server in servers:
            tls = server in self.tls_servers
            for sock in server.sockets:
                # logged at WARNING so it shows at every level but `nothing` (tools wait for these lines)
                what = " (TLS)" if tls else ""
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    host, bound_port = sock.getsockname()[:2]
                    self.health.listeners.append(f"{'tls' if tls else 'tcp'}://{host}:{bound_port}")
                    log.warning("redisai-fast %s ready to accept connections on %s:%d%s", __version__, host, bound_port, what)
                else:
                    self.health.listeners.append(f"unix://{sock.getsockname()}")
                    log.warning("redisai-fast %s ready to accept connections at %s", __version__, sock.getsockname())
        self.health.listening = True
        if on_ready is not None:
            on_ready()
        await self.stopping.wait()
        log.info("Shutting down (%s)", self.shutdown_mode)
        self.health.listening = False
        for server in servers:
            server.close()
        if metrics is not None:
            metrics.close()
        if self.unixsocket:
            log.info("Removing the unix socket file.")
            with contextlib.suppress(OSError):
                os.unlink(self.unixsocket)
        loop.remove_reader(self.core.completion_fd())
        self.core.clear_busy_poller()
        self.executor.stop()
        try:
            self.core.shutdown_persistence(self.shutdown_mode)
            log.info("Persistence closed (%s)", self.shutdown_mode)
        except ValueError as exc:
            log.error("Saving at shutdown failed: %s", exc)
        for server in servers:
            await server.wait_closed()
        if self.store_node is not None:
            self.store_node.stop()
        log.info("redisai-fast is now ready to exit, bye bye...")

    async def _start_http(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractServer | None:
        """`/metrics`, `/health/live` and `/health/ready` on `metrics-port` (0 = off); it opens
        before the data loads, so `/health/ready` can say it is not ready yet."""
        port = int(self.core.config_get("metrics-port") or 0)
        if not port:
            return None
        bind = (self.core.config_get("metrics-bind") or "127.0.0.1").split()
        server = await serve_http(self.core, self.health, bind, port)
        for sock in server.sockets:
            host, bound = sock.getsockname()[:2]
            log.warning("metrics and health endpoints on http://%s:%d/metrics", host, bound)
        return server

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning("Received %s, scheduling shutdown...", sig.name)
        assert self.stopping is not None
        self.stopping.set()


def pin_framework_threads(intra_op: int) -> None:
    """Caps the frameworks' OpenMP/MKL pools before any of them is imported: a server runs many
    requests at once, and MKL's per-calling-thread pools made a small TorchScript MLP 15x slower
    when called from a worker thread (345 µs instead of 20 µs per run on a 2-core machine)."""
    n = str(intra_op if intra_op > 0 else 1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, n)


def run(options: list[tuple[str, str | list[str]]], backends: list[tuple[str, str]] | None = None) -> int:
    """Starts the server and blocks until it is shut down. Returns the process exit code."""
    app = App(options, backends)
    pin_framework_threads(int(app.core.config_get("intra_op_parallelism") or 0))
    from redisai_fast.server.store_node import StoreNodeError

    try:
        uvloop.run(app.serve())
    except (ListenError, StoreNodeError) as exc:
        log.warning("%s", exc)
        if app.store_node is not None:
            app.store_node.stop()
        return 1
    return 0
