"""ONNX backend: onnxruntime sessions, with intra/inter-op threads, the execution timeout (long
runs are terminated) and BACKEND_MEMORY_LIMIT (a capped CPU arena).

CPU models whose inputs and outputs are all numeric tensors are loaded through onnxruntime's C API
(the `libonnxruntime.so` this wheel ships, opened by the server core at run time): the server then
runs them from Rust, with no Python per run and without the GIL, so worker threads compute while
the event loop serves other clients. GPU models, STRING tensors and BACKEND_MEMORY_LIMIT keep the
Python session (`REDISAI_FAST_ONNX_C_API=0` keeps it for every model)."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from redisai_fast import _core
from redisai_fast.backends import BackendError, Device, Options, framework_message, gpu_missing

log = logging.getLogger("redisai_fast.backends.onnx")


class Watchdog:
    """Terminates ONNX runs that outlive MODEL_EXECUTION_TIMEOUT. Each thread reuses one RunOptions
    and registers its run start in a dict (O(1) per run); one thread checks them every 100 ms."""

    PERIOD_S = 0.1

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_s = timeout_ms / 1000
        self._running: dict[int, tuple[float, ort.RunOptions]] = {}
        self._local = threading.local()
        if timeout_ms > 0:
            # the thread holds the watchdog weakly: it ends once its backend is gone (an
            # in-process database that was closed)
            threading.Thread(target=Watchdog._loop, args=(weakref.ref(self),), name="onnx-watchdog", daemon=True).start()

    def options(self) -> ort.RunOptions:
        opts = getattr(self._local, "opts", None)
        if opts is None:
            opts = self._local.opts = ort.RunOptions()
        opts.terminate = False
        return opts

    def started(self, opts: ort.RunOptions) -> None:
        if self.timeout_s > 0:
            self._running[threading.get_ident()] = (time.monotonic(), opts)

    def finished(self) -> None:
        self._running.pop(threading.get_ident(), None)

    @staticmethod
    def _loop(ref: weakref.ref[Watchdog]) -> None:
        while True:
            time.sleep(Watchdog.PERIOD_S)
            dog = ref()
            if dog is None:
                return
            now = time.monotonic()
            for start, opts in list(dog._running.values()):
                if now - start > dog.timeout_s:
                    opts.terminate = True
            del dog


class OnnxModel:
    def __init__(self, session: ort.InferenceSession, backend: OnnxBackend) -> None:
        self.session = session
        self.backend = backend
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        # the compiled session under InferenceSession's Python wrapper, which re-validates the
        # feed names on every call (we check the count ourselves): 1 µs of a 10 µs MLP run
        core = getattr(session, "_sess", None)
        self._run = core.run if core is not None and hasattr(core, "run") else session.run

    def run(self, inputs: list[Any]) -> list[Any]:
        if len(inputs) != len(self.input_names):
            raise BackendError(f"ERR Expected {len(self.input_names)} inputs but got {len(inputs)}")
        feeds = {}
        for name, v in zip(self.input_names, inputs):
            if v.dtype == "STRING":
                feeds[name] = np.array([s.decode("utf-8", "replace") for s in v.strings()], dtype=object).reshape(v.shape)
            else:
                feeds[name] = np.asarray(v)
        dog = self.backend.watchdog
        opts = dog.options()
        dog.started(opts)
        try:
            outs = self._run(self.output_names, feeds, opts)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(framework_message(exc), verbatim=True) from exc
        finally:
            dog.finished()
        return [to_output(o) for o in outs]


class OnnxNativeModel:
    """A CPU model loaded through onnxruntime's C API: the server runs `native` itself; `run` is
    for callers of the adapter interface."""

    def __init__(self, native: Any) -> None:
        self.native = native
        self.input_names = list(native.input_names)
        self.output_names = list(native.output_names)

    def run(self, inputs: list[Any]) -> list[Any]:
        try:  # the session checks the input count itself, with the message OnnxModel gives
            return self.native.run(inputs)
        except RuntimeError as exc:
            raise BackendError(str(exc), verbatim=True) from exc


def c_api_library() -> str | None:
    """The onnxruntime shared library beside this wheel's Python binding, if it ships one."""
    if os.environ.get("REDISAI_FAST_ONNX_C_API", "1") == "0":
        return None
    capi = Path(ort.__file__).resolve().parent / "capi"
    found = sorted(capi.glob("libonnxruntime.so.*")) or sorted(capi.glob("libonnxruntime.so"))
    if not found:
        return None
    try:
        version = _core.OrtSession.library_version(str(found[-1]))
    except ValueError as exc:
        log.warning("onnxruntime's C API cannot be used (%s): ONNX models run through its Python binding", exc)
        return None
    if version != ort.__version__.split("+")[0]:
        log.warning("%s is onnxruntime %s, the binding %s: ONNX models run through the binding", found[-1], version, ort.__version__)
        return None
    return str(found[-1])


def to_output(o: Any) -> Any:
    a = np.asarray(o)
    if a.dtype == object or a.dtype.kind in "SU":
        items = [x.encode() if isinstance(x, str) else bytes(x) for x in a.ravel()]
        return _core.string_tensor(list(a.shape), items)
    return np.ascontiguousarray(a)


class OnnxBackend:
    name = "ONNX"

    def __init__(self, options: Options) -> None:
        self.options = options
        self.watchdog = Watchdog(options.model_execution_timeout_ms)
        self._arena_registered = False
        if options.backend_memory_limit_mb > 0:
            # one shared CPU arena for every session, capped at BACKEND_MEMORY_LIMIT
            cfg = ort.OrtArenaCfg({"max_mem": options.backend_memory_limit_mb * 1024 * 1024, "arena_extend_strategy": 1})
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(info, cfg)
            self._arena_registered = True
        self._c_api = c_api_library()

    def version(self) -> str:
        return ort.__version__

    def load(self, blob: Any, device: Device, inputs: list[str], outputs: list[str]) -> OnnxModel | OnnxNativeModel:
        if self._c_api is not None and not device.is_gpu and not self._arena_registered:
            try:
                native = _core.OrtSession(self._c_api, blob, self.options.intra_threads, self.options.inter_op_parallelism,
                                          self.options.model_execution_timeout_ms)
            except ValueError:
                native = None  # the binding's session below fails too, with the message clients know
            if native is not None and native.plain:
                return OnnxNativeModel(native)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = self.options.intra_threads
        if self.options.intra_threads == 1:
            # no pool threads to spin: they would compete with the event loop for the cores
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.options.inter_op_parallelism > 0:
            so.inter_op_num_threads = self.options.inter_op_parallelism
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if self._arena_registered:
            so.add_session_config_entry("session.use_env_allocators", "1")
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.is_gpu:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise gpu_missing("ONNX", device, 0)
            providers = [("CUDAExecutionProvider", {"device_id": device.index}), "CPUExecutionProvider"]
        try:
            session = ort.InferenceSession(bytes(blob), so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            msg = framework_message(exc)  # onnxruntime's own text, as RedisAI relays it
            if "IR version" in msg or "opset" in msg.lower():
                msg = f"{msg} (the model needs a newer onnxruntime than the installed {ort.__version__})"
            raise BackendError(msg, verbatim=True) from exc
        return OnnxModel(session, self)


def create(options: Options) -> OnnxBackend:
    return OnnxBackend(options)
