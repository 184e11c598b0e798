"""Threads that do the work commands queue: device workers run model batches, loader threads load
models and backends. They wait inside Rust with the GIL released; frameworks release it while
they compute. Nothing here runs on the event loop."""

from __future__ import annotations

import logging
import threading
from typing import Any

from redisai_fast.backends import BackendError, Device, Options, Registry, clean_message

log = logging.getLogger("redisai_fast.workers")

LOADER_THREADS = 2

# the core whose work this thread does (its workers, loaders and event loop set it): a script's
# `redis.execute` runs on the server that runs the script, when one process has several
current = threading.local()


class Executor:
    def __init__(self, core: Any, options: Options, threads_per_queue: int, backends_path: str) -> None:
        self.core = core
        self.threads_per_queue = max(1, threads_per_queue)
        self.backends_path = backends_path
        self.registry = Registry(options, on_loaded=self._backend_loaded)
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _backend_loaded(self, name: str, version: str) -> None:
        log.info("backend %s loaded (framework version %s)", name, version)
        self.core.set_backend_version(name, version)

    def start(self) -> None:
        for i in range(LOADER_THREADS):
            self._spawn(self._loader, f"loader-{i}")
        self.ensure_queue("CPU")

    def ensure_queue(self, device: str) -> None:
        """Creates a device's run queue with THREADS_PER_QUEUE workers, once."""
        with self._lock:
            queue, created = self.core.queue(device)
            if created:
                for i in range(self.threads_per_queue):
                    self._spawn(self._worker, f"worker-{queue.device}-{i}", queue)

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        t = threading.Thread(target=target, name=name, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self.core.close_exec()
        for t in self.threads:
            t.join(timeout)

    def _worker(self, queue: Any) -> None:
        current.core = self.core
        # batch.run() calls the model or script and completes the batch; errors become replies
        while (batch := queue.next_batch()) is not None:
            batch.run()

    def _loader(self) -> None:
        current.core = self.core
        while (job := self.core.next_host_job()) is not None:
            self.run_job(job)

    def run_job(self, job: Any) -> None:
        """Loads a model / compiles a script / loads a backend, and finishes the job either way."""
        try:
            if job.kind == "load_model":
                backend = self.registry.get(job.backend)
                model = backend.load(job.blob, Device.parse(job.device), job.inputs, job.outputs)
                self.ensure_queue(job.queue)
                job.done_model(model, list(model.input_names), list(model.output_names))
            elif job.kind == "compile_script":
                self.registry.get("TORCH")  # scripts need the TORCH backend (and its version in INFO)
                from redisai_fast import scripts

                scripts.bind()
                compiled = scripts.compile_script(job.source, Device.parse(job.device), job.entry_points)
                self.ensure_queue(job.queue)
                job.done_script(compiled)
            else:
                self.registry.load_from_path(job.backend, job.path, self.backends_path)
                job.done()
        except BackendError as exc:
            job.fail(exc.message)
        except Exception as exc:  # anything a framework raises while loading
            log.exception("load failed")
            job.fail(f"ERR {clean_message(exc)}")
