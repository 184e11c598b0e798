"""`open()` and `Database`: the server's core inside the calling process, used through methods
named as in redisai-py; every call is a command on the server's own command path."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from redisai_fast._endpoint import Endpoint, OptionValue, connect_host, directives
from redisai_fast.errors import ConnectionError, ServerStartError, error_from_reply

if TYPE_CHECKING:
    from redisai_fast.server.app import App

Key = str | bytes
Keys = Key | Sequence[Key]
Arg = str | bytes | int | float

# numpy dtype <-> RedisAI type (STRING tensors are numpy str arrays)
_NUMPY: dict[bytes, np.dtype[Any]] = {
    b"FLOAT": np.dtype(np.float32),
    b"DOUBLE": np.dtype(np.float64),
    b"INT8": np.dtype(np.int8),
    b"INT16": np.dtype(np.int16),
    b"INT32": np.dtype(np.int32),
    b"INT64": np.dtype(np.int64),
    b"UINT8": np.dtype(np.uint8),
    b"UINT16": np.dtype(np.uint16),
    b"BOOL": np.dtype(np.bool_),
}
_TYPE_OF: dict[np.dtype[Any], str] = {v: k.decode() for k, v in _NUMPY.items()}
# dtype names tensorset takes for lists and tuples (redisai-py's)
_TYPE_NAMES = {
    "float": "FLOAT", "double": "DOUBLE", "float32": "FLOAT", "float64": "DOUBLE", "int8": "INT8",
    "int16": "INT16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8", "uint16": "UINT16",
    "bool": "BOOL", "str": "STRING", "string": "STRING",
}
_FLOATS = (b"FLOAT", b"DOUBLE")


def _listify(v: Keys) -> list[Key]:
    return list(v) if isinstance(v, (list, tuple)) else [v]  # type: ignore[list-item]


def _counted(word: str, v: Keys) -> list[Any]:
    items = _listify(v)
    return [word, len(items), *items]


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _reply_dict(reply: list[Any], keep: tuple[str, ...] = ("blob",)) -> dict[str, Any]:
    """A flat `[name, value, ...]` reply as a dict: names in lower case, bytes values (and lists
    of them) decoded, except those in `keep`."""
    out: dict[str, Any] = {}
    for name, value in zip(reply[::2], reply[1::2]):
        k = _text(name).lower()
        if k not in keep:
            value = [_text(x) for x in value] if isinstance(value, list) else _text(value)
        out[k] = value
    return out


def _string_blob(array: np.ndarray) -> bytes:
    return b"".join((s if isinstance(s, bytes) else str(s).encode()) + b"\0" for s in array.flat)


def _tensor_args(key: Key, tensor: Any, shape: Sequence[int] | None, dtype: str | None) -> list[Any]:
    """The AI.TENSORSET arguments after the command name for what `tensorset` accepts."""
    if isinstance(tensor, (list, tuple)):
        if dtype is None:
            raise TypeError("tensorset() of a list or tuple needs dtype (e.g. dtype='float')")
        name = _TYPE_NAMES.get(str(dtype).lower())
        if name is None:
            raise TypeError(f"{dtype!r} is not a RedisAI type; use one of {sorted(_TYPE_NAMES)}")
        return [key, name, *(shape if shape is not None else (len(tensor),)), "VALUES", *tensor]
    array = np.asarray(tensor)
    if array.dtype.kind in "USO":
        return [key, "STRING", *array.shape, "BLOB", _string_blob(array)]
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    name = _TYPE_OF.get(array.dtype)
    if name is None:
        raise TypeError(f"tensors of dtype {array.dtype} are not supported: use float32, float64, int8, int16, "
                        "int32, int64, uint8, uint16 or bool")
    # the data as a 1-d buffer (a 0-d one would be sent as a number)
    return [key, name, *array.shape, "BLOB", np.ascontiguousarray(array).reshape(-1)]


def _tensor_result(reply: list[Any], as_numpy: bool, mutable: bool, meta_only: bool) -> Any:
    """An AI.TENSORGET reply (META with BLOB or VALUES) as redisai-py returns it."""
    dtype, shape = reply[1], reply[3]
    if meta_only:
        return {"dtype": dtype.decode(), "shape": shape}
    if not (as_numpy or mutable):
        conv: Any = float if dtype in _FLOATS else _text if dtype == b"STRING" else int
        return {"dtype": dtype.decode(), "shape": shape, "values": [conv(v) for v in reply[5]]}
    blob = reply[5]
    np_dtype = _NUMPY.get(dtype)
    if np_dtype is None:  # STRING: NUL-terminated elements
        return np.array(bytes(blob).decode().split("\0")[:-1], dtype="str").reshape(shape)
    if isinstance(blob, bytes):  # a DAG's reply (a copy)
        array = np.frombuffer(blob, np_dtype).reshape(shape)
    else:  # a typed view of the stored buffer
        array = np.asarray(blob)
    return array.copy() if mutable else array


class Database(Endpoint):
    """The server's core running in this process (see `open`)."""

    def __init__(self, port: int | None = None, unixsocket: str | os.PathLike[str] | None = None, **options: OptionValue) -> None:
        from redisai_fast.server.app import App, pin_framework_threads

        self._tmp: str | None = None
        opts = dict(options)
        if "dir" not in opts:
            self._tmp = tempfile.mkdtemp(prefix="redisai-fast-db-")
            opts["dir"] = self._tmp
            opts.setdefault("save", "")
        self.host = connect_host(str(opts["bind"]) if "bind" in opts else None)
        self._password = str(opts["requirepass"]) if opts.get("requirepass") else None
        self.unixsocket = os.path.abspath(unixsocket) if unixsocket is not None else None
        pairs: list[tuple[str, str | list[str]]] = list(directives(opts))
        if self.unixsocket is not None:
            pairs.append(("unixsocket", self.unixsocket))
        self._closed = False
        # `port auto`: the listener binds a free port itself; `port 0`: no TCP listener
        pairs.append(("port", "auto" if port == 0 else str(port or 0)))
        try:
            app = App(pairs)
        except ValueError as exc:  # a bad option: (message, index of the option)
            self._cleanup()
            raise ServerStartError(str(exc.args[0] if exc.args else exc)) from exc
        pin_framework_threads(int(app.core.config_get("intra_op_parallelism") or 0))
        self._app: App | None = app
        self._local = app.core.local_client(error_from_reply, ConnectionError)
        self._failure: BaseException | None = None
        listen = port is not None or self.unixsocket is not None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(app, listen, ready), name="redisai-fast", daemon=True)
        self._thread.start()
        ready.wait()
        if self._failure is not None:
            self._thread.join()
            self._app = None
            self._cleanup()
            raise ServerStartError(str(self._failure)) from self._failure
        self.port = int(app.core.config_get("port") or 0) or None
        atexit.register(self.close)

    def _serve(self, app: App, listen: bool, ready: threading.Event) -> None:
        """The server's event loop (listeners, timers, persistence), on a thread of its own."""
        import uvloop

        try:
            uvloop.run(app.serve(listen=listen, on_ready=ready.set))
        except Exception as exc:  # noqa: BLE001 (the constructor raises it when it happens at start)
            self._failure = exc
            app.executor.stop()
        finally:
            self._local.close()
            ready.set()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> None:
        """Stops the server's threads and closes its persistence as a clean shutdown does (a
        snapshot per the `save` rules, the AOF synced). Later calls raise `ConnectionError`.
        Called at interpreter exit; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._local.close()
        if self._thread.is_alive() and self._app is not None:
            self._app.stop_soon("default")
            self._thread.join()
        self._app = None  # the keyspace goes with it
        self._cleanup()

    @property
    def closed(self) -> bool:
        """True once closed (by `close()`, or by a network client's SHUTDOWN)."""
        return bool(self._local.closed)

    def __enter__(self) -> Database:  # noqa: PYI034
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        where = [f"port={self.port}"] if self.port else []
        where += [f"unixsocket={self.unixsocket!r}"] if self.unixsocket else []
        return f"<redisai_fast.Database {' '.join(where) or 'in-process'}{' closed' if self.closed else ''}>"

    # ------------------------------------------------------------------ any command

    def execute_command(self, *args: Any) -> Any:
        """Runs any command (`db.execute_command("HSET", "h", "f", 1)`) and returns its reply:
        str for status replies (`"OK"`), bytes for bulk strings, int, None, lists; an error reply
        raises (see `redisai_fast.errors`). Arguments are str, bytes, int, float or buffers."""
        return self._local.execute(*args)

    # ------------------------------------------------------------------ tensors

    def tensorset(self, key: Key, tensor: Any, shape: Sequence[int] | None = None, dtype: str | None = None) -> str:
        """Stores a tensor: a numpy array (its data copied once, into the stored buffer), or a
        list/tuple of values with `dtype` (`"float"`, `"int64"`, ...) and `shape`. Returns "OK".

        >>> db.tensorset("x", np.arange(4, dtype=np.float32).reshape(2, 2))
        'OK'
        """
        if type(tensor) is np.ndarray and tensor.dtype in _TYPE_OF:
            return self._local.tensorset(key, tensor)  # type: ignore[no-any-return]
        return self._local.execute("AI.TENSORSET", *_tensor_args(key, tensor, shape, dtype))  # type: ignore[no-any-return]

    def tensorget(self, key: Key, as_numpy: bool = True, as_numpy_mutable: bool = False, meta_only: bool = False) -> Any:
        """A stored tensor as a read-only numpy array over the stored buffer (no copy; it stays
        valid when the key changes); `as_numpy_mutable=True` gives a copy, `as_numpy=False`
        `{"dtype", "shape", "values"}`, `meta_only=True` `{"dtype", "shape"}`.

        >>> db.tensorset("x", np.arange(4, dtype=np.float32).reshape(2, 2))
        'OK'
        >>> db.tensorget("x")
        array([[0., 1.],
               [2., 3.]], dtype=float32)
        """
        if meta_only:
            return _tensor_result(self._local.execute("AI.TENSORGET", key, "META"), as_numpy, as_numpy_mutable, True)
        if not (as_numpy or as_numpy_mutable):
            return _tensor_result(self._local.execute("AI.TENSORGET", key, "META", "VALUES"), False, False, False)
        return _tensor_result(self._local.tensorget(key), True, as_numpy_mutable, False)

    # ------------------------------------------------------------------ models

    def modelstore(
        self,
        key: Key,
        backend: str,
        device: str,
        data: bytes,
        batch: int | None = None,
        minbatch: int | None = None,
        minbatchtimeout: int | None = None,
        tag: Key | None = None,
        inputs: Keys | None = None,
        outputs: Keys | None = None,
    ) -> str:
        """Stores a model (`backend` TF, TFLITE, TORCH or ONNX; `device` CPU, GPU or GPU:n),
        loading it into its framework on the server's loader threads. Returns "OK"."""
        args: list[Any] = ["AI.MODELSTORE", key, backend, device]
        if tag is not None:
            args += ["TAG", tag]
        if batch is not None:
            args += ["BATCHSIZE", batch]
        if minbatch is not None:
            args += ["MINBATCHSIZE", minbatch]
        if minbatchtimeout is not None:
            args += ["MINBATCHTIMEOUT", minbatchtimeout]
        if inputs is not None:
            args += _counted("INPUTS", inputs)
        if outputs is not None:
            args += _counted("OUTPUTS", outputs)
        return self._local.execute(*args, "BLOB", data)  # type: ignore[no-any-return]

    def modelget(self, key: Key, meta_only: bool = False) -> dict[str, Any]:
        """The model's definition (`backend`, `device`, `tag`, `batchsize`, `minbatchsize`,
        `inputs`, `outputs`, `minbatchtimeout`) and, unless `meta_only`, its `blob`."""
        return _reply_dict(self._local.execute("AI.MODELGET", key, "META", *([] if meta_only else ["BLOB"])))

    def modeldel(self, key: Key) -> str:
        """Deletes a model. Returns "OK"."""
        return self._local.execute("AI.MODELDEL", key)  # type: ignore[no-any-return]

    def modelexecute(self, key: Key, inputs: Keys, outputs: Keys, timeout: int | None = None) -> str:
        """Runs a model on the tensors at `inputs`, storing its outputs at `outputs`. The run
        goes to the server's worker threads (batched with other clients' requests when the model
        batches) while this thread waits with the GIL released. Returns "OK" ("TIMEDOUT" when it
        waited longer than `timeout` ms in the queue)."""
        args = ["AI.MODELEXECUTE", key, *_counted("INPUTS", inputs), *_counted("OUTPUTS", outputs)]
        if timeout is not None:
            args += ["TIMEOUT", timeout]
        return self._local.execute(*args)  # type: ignore[no-any-return]

    def modelscan(self) -> list[list[str]]:
        """`[[key, tag], ...]` for every model."""
        return [[_text(k), _text(t)] for k, t in self._local.execute("AI._MODELSCAN")]

    # ------------------------------------------------------------------ scripts

    def scriptstore(self, key: Key, device: str, script: str, entry_points: Keys, tag: Key | None = None) -> str:
        """Stores (compiles) a TorchScript script whose functions `entry_points` can be run."""
        args: list[Any] = ["AI.SCRIPTSTORE", key, device]
        if tag is not None:
            args += ["TAG", tag]
        return self._local.execute(*args, *_counted("ENTRY_POINTS", entry_points), "SOURCE", script)  # type: ignore[no-any-return]

    def scriptget(self, key: Key, meta_only: bool = False) -> dict[str, Any]:
        """The script's `device`, `tag`, `entry points` and, unless `meta_only`, `source`."""
        return _reply_dict(self._local.execute("AI.SCRIPTGET", key, "META", *([] if meta_only else ["SOURCE"])), ())

    def scriptdel(self, key: Key) -> str:
        """Deletes a script. Returns "OK"."""
        return self._local.execute("AI.SCRIPTDEL", key)  # type: ignore[no-any-return]

    def scriptexecute(
        self,
        key: Key,
        function: str,
        keys: Keys | None = None,
        inputs: Keys | None = None,
        args: Keys | None = None,
        outputs: Keys | None = None,
        timeout: int | None = None,
    ) -> str:
        """Runs `function` of a stored script (on the server's workers, the GIL released while
        this thread waits). Returns "OK"."""
        cmd: list[Any] = ["AI.SCRIPTEXECUTE", key, function]
        for word, v in (("KEYS", keys), ("INPUTS", inputs), ("ARGS", args), ("OUTPUTS", outputs)):
            if v is not None:
                cmd += _counted(word, v)
        if timeout is not None:
            cmd += ["TIMEOUT", timeout]
        return self._local.execute(*cmd)  # type: ignore[no-any-return]

    def scriptscan(self) -> list[list[str]]:
        """`[[key, tag], ...]` for every script."""
        return [[_text(k), _text(t)] for k, t in self._local.execute("AI._SCRIPTSCAN")]

    # ------------------------------------------------------------------ AI admin

    def infoget(self, key: Key) -> dict[str, Any]:
        """Run statistics of a model or script (AI.INFO)."""
        return _reply_dict(self._local.execute("AI.INFO", key), ())

    def inforeset(self, key: Key) -> str:
        """Resets the run statistics of a model or script. Returns "OK"."""
        return self._local.execute("AI.INFO", key, "RESETSTAT")  # type: ignore[no-any-return]

    def config(self, name: str, value: str | int | None = None) -> Any:
        """AI.CONFIG: reads an option (`value` None) or sets it."""
        if value is None:
            return _text(self._local.execute("AI.CONFIG", "GET", name))
        return self._local.execute("AI.CONFIG", name, value)

    def loadbackend(self, identifier: str, path: str) -> str:
        """AI.CONFIG LOADBACKEND: replaces the adapter of backend `identifier` (see the README)."""
        return self._local.execute("AI.CONFIG", "LOADBACKEND", identifier, path)  # type: ignore[no-any-return]

    def dag(
        self,
        load: Keys | None = None,
        persist: Keys | None = None,
        routing: Key | None = None,
        timeout: int | None = None,
        readonly: bool = False,
    ) -> Dag:
        """A DAG to build (`.tensorset(...).modelexecute(...).tensorget(...)`) and `execute()`
        as one AI.DAGEXECUTE (AI.DAGEXECUTE_RO when `readonly`)."""
        return Dag(self, load, persist, routing, timeout, readonly)

    # ------------------------------------------------------------------ plain keys

    def get(self, name: Key) -> bytes | None:
        """GET."""
        return self._local.execute("GET", name)  # type: ignore[no-any-return]

    def set(self, name: Key, value: Arg, ex: int | None = None, px: int | None = None, nx: bool = False, xx: bool = False) -> bool | None:
        """SET; True when set, None when `nx`/`xx` prevented it."""
        args: list[Any] = ["SET", name, value]
        if ex is not None:
            args += ["EX", ex]
        if px is not None:
            args += ["PX", px]
        if nx:
            args.append("NX")
        if xx:
            args.append("XX")
        return True if self._local.execute(*args) == "OK" else None

    def delete(self, *names: Key) -> int:
        """DEL: how many of the keys existed."""
        return self._local.execute("DEL", *names)  # type: ignore[no-any-return]

    def exists(self, *names: Key) -> int:
        """EXISTS: how many of the keys exist."""
        return self._local.execute("EXISTS", *names)  # type: ignore[no-any-return]

    def keys(self, pattern: Key = "*") -> list[bytes]:
        """KEYS: the keys matching the glob `pattern`."""
        return self._local.execute("KEYS", pattern)  # type: ignore[no-any-return]


class Dag:
    """A DAG being built: each method adds an operation and returns the DAG; `execute()` runs
    them as one command and returns one result per operation (an operation's error is returned
    as its exception, not raised)."""

    def __init__(self, db: Database, load: Keys | None, persist: Keys | None, routing: Key | None,
                 timeout: int | None, readonly: bool) -> None:
        if readonly and persist:
            raise ValueError("a read-only DAG cannot PERSIST")
        self._db = db
        self._readonly = readonly
        self._args: list[Any] = ["AI.DAGEXECUTE_RO" if readonly else "AI.DAGEXECUTE"]
        if load is not None:
            self._args += _counted("LOAD", load)
        if persist is not None:
            self._args += _counted("PERSIST", persist)
        if routing is not None:
            self._args += ["ROUTING", routing]
        if timeout is not None:
            self._args += ["TIMEOUT", timeout]
        self._results: list[Any] = []

    def _op(self, args: list[Any], result: Any) -> Dag:
        self._args += ["|>", *args]
        self._results.append(result)
        return self

    def tensorset(self, key: Key, tensor: Any, shape: Sequence[int] | None = None, dtype: str | None = None) -> Dag:
        """Sets a tensor in the DAG's scope (as `Database.tensorset`)."""
        return self._op(["AI.TENSORSET", *_tensor_args(key, tensor, shape, dtype)], _text)

    def tensorget(self, key: Key, as_numpy: bool = True, as_numpy_mutable: bool = False, meta_only: bool = False) -> Dag:
        """Returns a tensor of the DAG's scope (as `Database.tensorget`; DAG results are copies)."""
        fmt = ["META"] if meta_only else ["META", "BLOB" if as_numpy or as_numpy_mutable else "VALUES"]

        def result(reply: Any) -> Any:
            return _tensor_result(reply, as_numpy, as_numpy_mutable, meta_only)

        return self._op(["AI.TENSORGET", key, *fmt], result)

    def modelexecute(self, key: Key, inputs: Keys, outputs: Keys) -> Dag:
        """Runs a model on tensors of the DAG's scope."""
        return self._op(["AI.MODELEXECUTE", key, *_counted("INPUTS", inputs), *_counted("OUTPUTS", outputs)], _text)

    def scriptexecute(self, key: Key, function: str, keys: Keys | None = None, inputs: Keys | None = None,
                      args: Keys | None = None, outputs: Keys | None = None) -> Dag:
        """Runs a script function on tensors of the DAG's scope."""
        cmd: list[Any] = ["AI.SCRIPTEXECUTE", key, function]
        for word, v in (("KEYS", keys), ("INPUTS", inputs), ("ARGS", args), ("OUTPUTS", outputs)):
            if v is not None:
                cmd += _counted(word, v)
        return self._op(cmd, _text)

    def execute(self) -> list[Any]:
        """Runs the DAG; one result per operation ("OK", arrays, dicts, or an exception)."""
        replies = self._db.execute_command(*self._args)
        if not isinstance(replies, list):  # TIMEDOUT
            return [replies]
        return [r if isinstance(r, BaseException) else f(r) for r, f in zip(replies, self._results)]


def open(port: int | None = None, unixsocket: str | os.PathLike[str] | None = None, **options: OptionValue) -> Database:
    """Runs the server's core in this process and returns a `Database` to use it.

    `options` are the server's directives as keywords (`appendonly="yes"`, `threads_per_queue=2`;
    booleans are `yes`/`no`). Without `dir` the database lives in memory: its files would go to
    a temporary directory, removed by `close()`, and the `save` rules are off unless given. With
    `port` (0: a free one) or `unixsocket` it also listens, and network clients share its keys
    (`db.client()`, `db.url`). The server's threads (device workers, loaders, persistence
    timers, the event loop) run in this process until `close()` or interpreter exit.

    >>> db = redisai_fast.open()
    >>> db.set("greeting", "hello")
    True
    >>> db.get("greeting")
    b'hello'
    >>> db.close()
    """
    return Database(port, unixsocket, **options)
