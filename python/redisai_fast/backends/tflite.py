"""TFLITE backend: .tflite flatbuffers through LiteRT (ai-edge-litert). CPU only; no batching
(refused at MODELSTORE, as RedisAI does). An interpreter is not thread-safe, so runs of one model
are serialized."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ai_edge_litert import interpreter as litert

from redisai_fast.backends import BackendError, Device, Options, clean_message

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _dist_version

    LITERT_VERSION = _dist_version("ai-edge-litert")
except PackageNotFoundError:  # metadata missing in odd installs
    LITERT_VERSION = "unknown"


class TfliteModel:
    def __init__(self, interp: Any) -> None:
        self.interp = interp
        self.lock = threading.Lock()
        self.inputs = interp.get_input_details()
        self.outputs = interp.get_output_details()
        self.input_names = [d["name"] for d in self.inputs]
        self.output_names = [d["name"] for d in self.outputs]

    def run(self, inputs: list[Any]) -> list[Any]:
        if len(inputs) != len(self.inputs):
            raise BackendError(f"ERR Expected {len(self.inputs)} inputs but got {len(inputs)}")
        with self.lock:
            resized = False
            arrays = [np.asarray(v) for v in inputs]
            for d, a in zip(self.inputs, arrays):
                if a.dtype != d["dtype"]:
                    raise BackendError("ERR Input tensor type doesn't match the type expected by the model definition")
                if tuple(d["shape"]) != a.shape:
                    self.interp.resize_tensor_input(d["index"], a.shape)
                    resized = True
            try:
                if resized:
                    self.interp.allocate_tensors()
                    self.inputs = self.interp.get_input_details()
                    self.outputs = self.interp.get_output_details()
                for d, a in zip(self.inputs, arrays):
                    self.interp.set_tensor(d["index"], a)
                self.interp.invoke()
                return [np.ascontiguousarray(self.interp.get_tensor(d["index"])) for d in self.outputs]
            except Exception as exc:  # ValueError/RuntimeError from the interpreter
                raise BackendError(clean_message(exc)) from exc


class TfliteBackend:
    name = "TFLITE"

    def __init__(self, options: Options) -> None:
        self.options = options

    def version(self) -> str:
        return LITERT_VERSION

    def load(self, blob: Any, device: Device, inputs: list[str], outputs: list[str]) -> TfliteModel:
        if device.is_gpu:
            raise BackendError("ERR the TFLITE backend runs on CPU only")
        threads = self.options.intra_threads
        try:
            interp = litert.Interpreter(model_content=bytes(blob), num_threads=threads)
            interp.allocate_tensors()
        except Exception as exc:  # ValueError("Model provided has model identifier ...") etc.
            raise BackendError(f"ERR Failed to load model from buffer: {clean_message(exc)}") from exc
        return TfliteModel(interp)


def create(options: Options) -> TfliteBackend:
    return TfliteBackend(options)
