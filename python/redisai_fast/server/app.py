"""Runs the server: builds the Rust core, listens with uvloop, expires keys, shuts down cleanly.

Per-command work never happens here: each connection is a Rust `Connection` protocol object.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

import uvloop

from redisai_fast import __version__, _core
from redisai_fast.backends import PACKAGE_DIR, Options
from redisai_fast.server.workers import Executor

log = logging.getLogger("redisai_fast")

EXPIRE_PERIOD_S = 0.1
SWEEP_PERIOD_S = 0.01
CRON_PERIOD_S = 1.0


class App:
    """One running server: the core, its listeners and the shutdown signal."""

    def __init__(self, options: list[tuple[str, str]]) -> None:
        self.core = _core.Server(options, self._on_shutdown_command)
        if not self.core.config_get("backendspath"):
            self.core.set_option("backendspath", str(PACKAGE_DIR))
        self.stopping: asyncio.Event | None = None
        self.shutdown_mode = "default"

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
        loop.call_later(SWEEP_PERIOD_S, self._sweep_tick, loop)

    def _cron_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.core.cron()
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

    def load_data(self) -> None:
        """Loads the AOF or snapshot before any client is accepted (models and scripts are loaded
        into their frameworks now, so they are ready to run); then opens the AOF."""
        t0 = time.monotonic()
        summary = self.core.load_data(self.executor.run_job)
        log.warning("%s in %.2f s", summary, time.monotonic() - t0)
        self.core.start_persistence()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        hosts = (self.core.config_get("bind") or "127.0.0.1").split()
        port = int(self.core.config_get("port") or 6379)
        self.executor.start()
        self.load_data()
        server = await loop.create_server(
            self.core.new_connection, host=hosts, port=port, reuse_address=True, backlog=511
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_reader(self.core.completion_fd(), self.core.drain_completions)
        loop.call_later(CRON_PERIOD_S, self._cron_tick, loop)
        loop.call_later(EXPIRE_PERIOD_S, self._expire_tick, loop)
        loop.call_later(SWEEP_PERIOD_S, self._sweep_tick, loop)
        self._start_busy_polling(loop)
        for sock in server.sockets:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                host, bound_port = sock.getsockname()[:2]
                self.core.set_bound_port(bound_port)
                # logged at WARNING so it shows at every level but `nothing` (tools wait for this line)
                log.warning("redisai-fast %s ready to accept connections on %s:%d", __version__, host, bound_port)
        await self.stopping.wait()
        log.info("Shutting down (%s)", self.shutdown_mode)
        server.close()
        loop.remove_reader(self.core.completion_fd())
        self.executor.stop()
        try:
            self.core.shutdown_persistence(self.shutdown_mode)
            log.info("Persistence closed (%s)", self.shutdown_mode)
        except ValueError as exc:
            log.error("Saving at shutdown failed: %s", exc)
        await server.wait_closed()
        log.info("redisai-fast is now ready to exit, bye bye...")

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


def run(options: list[tuple[str, str]]) -> int:
    """Starts the server and blocks until it is shut down. Returns the process exit code."""
    app = App(options)
    pin_framework_threads(int(app.core.config_get("intra_op_parallelism") or 0))
    uvloop.run(app.serve())
    return 0
