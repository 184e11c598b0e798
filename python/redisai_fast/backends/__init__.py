"""Backend adapters, one module per framework (tf, tflite, torch, onnx), imported on first use.

The adapter interface (also what `AI.CONFIG LOADBACKEND <name> <path-to-file.py>` loads):

    def create(options: Options) -> Backend

    class Backend:
        name: str                          # "TORCH", ...
        def version(self) -> str           # the framework's version (INFO ai)
        def load(self, blob, device, inputs, outputs) -> LoadedModel
            # blob: bytes-like (the serialized model); device: Device; inputs/outputs: node
            # names given with MODELSTORE (TF only; empty otherwise). Raise BackendError for a
            # clear error reply. Called on a loader thread, never on the event loop.

    class LoadedModel:
        input_names: list[str]             # the model's inputs (their count is checked per run)
        output_names: list[str]            # empty when the count is only known after a run
        def run(self, inputs: list[TensorView]) -> list[array]
            # inputs are zero-copy views (numpy.asarray(v), torch.from_dlpack(v), v.strings()
            # for STRING tensors); return C-contiguous arrays (numpy, or anything with the
            # buffer protocol). Called on a device worker thread; may run concurrently.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("redisai_fast.backends")

BUILTIN = {"TF": "tf", "TFLITE": "tflite", "TORCH": "torch", "ONNX": "onnx"}
# pip extra that installs each backend's framework
EXTRA = {"TF": "tf", "TFLITE": "tflite", "TORCH": "torch", "ONNX": "onnx"}
PACKAGE_DIR = Path(__file__).resolve().parent


class BackendError(Exception):
    """An error whose message is the client's whole error reply line. Our own messages start with
    an error code (`ERR` is added when missing). `verbatim=True`: a framework's text that RedisAI
    relays as the line itself, without a code (`-Invalid GraphDef`, onnxruntime's and TorchScript's
    messages); the reply encoder turns each newline into one space, as RedisAI does."""

    def __init__(self, message: str, *, verbatim: bool = False) -> None:
        if not message or (not verbatim and not re.match(r"^[A-Z]+ ", message)):
            message = "ERR " + message
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Device:
    """A parsed device: CPU, GPU (= GPU:0) or GPU:n (CPU:n are extra CPU queues)."""

    kind: str
    index: int
    text: str

    @staticmethod
    def parse(text: str) -> Device:
        up = text.upper()
        kind, _, idx = up.partition(":")
        if kind not in ("CPU", "GPU") or (idx and not idx.isdigit()):
            raise BackendError("ERR Invalid DEVICE")
        return Device(kind, int(idx) if idx else 0, text)

    @property
    def is_gpu(self) -> bool:
        return self.kind == "GPU"


@dataclass(frozen=True)
class Options:
    """Framework settings from the server options. INTRA_OP_PARALLELISM 0 means one thread per
    run (a server's parallelism comes from concurrent requests and THREADS_PER_QUEUE workers);
    INTER_OP_PARALLELISM 0 means the framework's default."""

    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    model_execution_timeout_ms: int = 5000
    backend_memory_limit_mb: int = 0

    @property
    def intra_threads(self) -> int:
        return self.intra_op_parallelism if self.intra_op_parallelism > 0 else 1


class LoadedModel(Protocol):
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: list[Any]) -> list[Any]: ...


class Backend(Protocol):
    name: str

    def version(self) -> str: ...

    def load(self, blob: Any, device: Device, inputs: list[str], outputs: list[str]) -> LoadedModel: ...


def gpu_missing(backend: str, device: Device, found: int) -> BackendError:
    return BackendError(
        f"ERR GPU requested but {backend} found no CUDA device for {device.text} "
        f"({found} visible); use CPU or run where a GPU exists"
    )


class Registry:
    """The backends loaded so far; imports a framework the first time a model needs it."""

    def __init__(self, options: Options, on_loaded: Any = None) -> None:
        self.options = options
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._on_loaded = on_loaded

    def loaded(self) -> dict[str, Backend]:
        return dict(self._backends)

    def get(self, name: str) -> Backend:
        with self._lock:
            b = self._backends.get(name)
            if b is None:
                b = self._import_builtin(name)
                self._register(name, b)
            return b

    def _register(self, name: str, backend: Backend) -> None:
        self._backends[name] = backend
        if self._on_loaded is not None:
            self._on_loaded(name, backend.version())

    def _import_builtin(self, name: str) -> Backend:
        module_name = BUILTIN.get(name)
        if module_name is None:
            raise BackendError("ERR unsupported backend")
        try:
            module = importlib.import_module(f"redisai_fast.backends.{module_name}")
        except ImportError as exc:
            log.warning("backend %s unavailable: %s", name, exc)
            raise BackendError(
                f"ERR Backend not loaded: {name} (its framework is not installed: "
                f"pip install 'redisai-fast[{EXTRA[name]}]')"
            ) from exc
        return module.create(self.options)

    def load_from_path(self, name: str, path: str, backends_path: str) -> None:
        """AI.CONFIG LOADBACKEND: a Python adapter file or module replaces the built-in one; a
        RedisAI native backend path (`redisai_<name>/redisai_<name>.so`) selects the built-in."""
        stem = Path(path).name
        if stem.endswith((".so", ".dylib", ".dll")) or re.fullmatch(r"redisai_\w+", stem):
            with self._lock:
                backend = self._import_builtin(name)
                self._register(name, backend)
            return
        file = Path(path)
        if not file.is_absolute() and backends_path:
            file = Path(backends_path) / file
        try:
            if file.suffix == ".py" and file.exists():
                spec = importlib.util.spec_from_file_location(f"redisai_fast_user_backend_{name.lower()}", file)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {file}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(path)
            backend = module.create(self.options)
        except Exception as exc:  # anything an arbitrary adapter raises while loading
            log.warning("LOADBACKEND %s %s failed: %s", name, path, exc)
            raise BackendError("ERR error loading backend") from exc
        with self._lock:
            self._register(name, backend)


def clean_message(exc: BaseException) -> str:
    """A framework exception as one line, without wrapper noise."""
    return " ".join(framework_message(exc).split()) or type(exc).__name__


def framework_message(exc: BaseException) -> str:
    """A framework's own error text as RedisAI relays it: whitespace kept (the reply encoder turns
    each newline into one space), without the Python binding's wrapper (`[ONNXRuntimeError] : 2 :
    INVALID_ARGUMENT : `)."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : ", "", text)
