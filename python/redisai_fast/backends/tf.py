"""TF backend: frozen GraphDefs (RedisAI's format) run through TensorFlow 2's compat graph API,
with the INPUTS/OUTPUTS node names given at MODELSTORE."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import tensorflow as tf

from redisai_fast import _core
from redisai_fast.backends import BackendError, Device, Options, clean_message, framework_message, gpu_missing

tf1 = tf.compat.v1

# TensorFlow's own names for the tensor types (DataTypeString), as its C API's errors spell them
TF_TYPE_NAMES = {
    "FLOAT": "float", "DOUBLE": "double", "INT8": "int8", "INT16": "int16", "INT32": "int32",
    "INT64": "int64", "UINT8": "uint8", "UINT16": "uint16", "BOOL": "bool", "STRING": "string",
}


def tf_type_name(dtype: Any) -> str:
    """A tf.DType as TensorFlow's C++ core names it (`float`, not Python's `float32`)."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def run_error(exc: BaseException) -> BackendError:
    """A failed run. TensorFlow's own message goes out as RedisAI (TF's C API) relays it: Python's
    Session wraps it ("Graph execution error: Detected at node ...") and keeps the original as the
    exception's context. Checks made by Python's Session alone (feed shapes) answer `ERR ...`."""
    for err in (exc.__context__, exc):
        if isinstance(err, tf.errors.OpError) and err.message:
            return BackendError(err.message, verbatim=True)
    return BackendError(clean_message(exc))


class TfModel:
    def __init__(self, session: Any, feeds: list[Any], fetches: list[Any], inputs: list[str], outputs: list[str]) -> None:
        self.session = session
        self.feeds = feeds
        self.fetches = fetches
        self.input_names = inputs
        self.output_names = outputs
        self.feed_types = [tf_type_name(t.dtype) for t in feeds]

    def run(self, inputs: list[Any]) -> list[Any]:
        feed = {}
        for i, (t, v) in enumerate(zip(self.feeds, inputs)):
            # Session.run would cast the value to the placeholder's type; TF's C API (RedisAI) refuses
            given = TF_TYPE_NAMES.get(v.dtype, v.dtype)
            if given != self.feed_types[i]:
                raise BackendError(f"Expects arg[{i}] to be {self.feed_types[i]} but {given} is provided", verbatim=True)
            feed[t] = np.array(v.strings(), dtype=object).reshape(v.shape) if v.dtype == "STRING" else np.asarray(v)
        try:
            outs = self.session.run(self.fetches, feed)
        except Exception as exc:  # tf.errors.OpError and friends
            raise run_error(exc) from exc
        result = []
        for o in outs:
            a = np.asarray(o)
            if a.dtype == object or a.dtype.kind in "SU":
                items = [x if isinstance(x, bytes) else str(x).encode() for x in a.ravel()]
                result.append(_core.string_tensor(list(a.shape), items))
            else:
                result.append(np.ascontiguousarray(a))
        return result


class TfBackend:
    name = "TF"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._lock = threading.Lock()

    def version(self) -> str:
        return tf.__version__

    def load(self, blob: Any, device: Device, inputs: list[str], outputs: list[str]) -> TfModel:
        if device.is_gpu:
            found = len(tf.config.list_physical_devices("GPU"))
            if device.index >= found:
                raise gpu_missing("TF", device, found)
        graph_def = tf1.GraphDef()
        try:
            graph_def.ParseFromString(bytes(blob))
        except Exception as exc:  # protobuf DecodeError
            raise BackendError("Invalid GraphDef", verbatim=True) from exc
        producer = graph_def.versions.producer
        if producer > tf.version.GRAPH_DEF_VERSION:
            raise BackendError(
                f"ERR the graph was written by a newer TensorFlow (GraphDef version {producer}) than the "
                f"installed tensorflow {tf.__version__} (reads up to {tf.version.GRAPH_DEF_VERSION})"
            )
        graph = tf.Graph()
        place = f"/device:GPU:{device.index}" if device.is_gpu else "/device:CPU:0"
        try:
            with graph.as_default(), tf.device(place):
                tf1.import_graph_def(graph_def, name="")
        except Exception as exc:  # ValueError / InvalidArgumentError for malformed graphs
            raise BackendError(framework_message(exc), verbatim=True) from exc
        feeds, fetches = [], []
        for name in inputs:
            try:
                feed = graph.get_tensor_by_name(f"{name}:0" if ":" not in name else name)
            except (KeyError, ValueError) as exc:
                raise BackendError(f'ERR Input node named "{name}" not found in TF graph.') from exc
            if feed.op.type != "Placeholder":  # RedisAI feeds placeholders only
                raise BackendError(f'ERR Input node named "{name}" not found in TF graph.')
            feeds.append(feed)
        for name in outputs:
            try:
                fetches.append(graph.get_tensor_by_name(f"{name}:0" if ":" not in name else name))
            except (KeyError, ValueError) as exc:
                raise BackendError(f'ERR Output node named "{name}" not found in TF graph') from exc
        config = tf1.ConfigProto(
            intra_op_parallelism_threads=self.options.intra_threads,
            inter_op_parallelism_threads=self.options.inter_op_parallelism,
            allow_soft_placement=False,
        )
        session = tf1.Session(graph=graph, config=config)
        return TfModel(session, feeds, fetches, list(inputs), list(outputs))


def create(options: Options) -> TfBackend:
    return TfBackend(options)
