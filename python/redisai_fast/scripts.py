"""TorchScript scripts: compiling sources with RedisAI's `redis` / `redisAI` extensions, checking
entry points, and calling functions in both API generations.

Inside a script, `redis.execute(cmd, args...)` (or with a list of strings) runs a non-blocking
command through the server's own command path and returns str / int / None / lists;
`redis.asList(value)` turns an array reply into a list; `redisAI.model_execute(key, tensors,
n_outputs)` runs a stored model. A script is code running inside the server: whoever may store
one may run code here (protect the server with `requirepass`).
"""

from __future__ import annotations

import threading
import types
from typing import Any, List, Optional, Tuple  # noqa: F401, UP035  (names scripts may use in annotations)

import numpy as np
import torch
from torch import Tensor  # noqa: F401  (resolved by the TorchScript compiler from this module)

from redisai_fast.backends import BackendError, Device
from redisai_fast.backends.torch import no_grad_on_this_thread, to_outputs, to_torch, torch_device
from redisai_fast.server import workers

_ops_lock = threading.Lock()


def _server() -> Any:
    """The core of the server running the current script (`workers.current`: one process may
    hold several in-process databases)."""
    core = getattr(workers.current, "core", None)
    if core is None:
        raise RuntimeError("redis.execute runs only on a server's own threads")
    return core
_libs: list[Any] = []


def _flatten(value: Any, kinds: list[int], strs: list[str], ints: list[int]) -> None:
    """A reply as the token lists `_REPLY_DECODER` reads (0 nil, 1 string, 2 integer, 3 array of
    n elements, n in `ints`)."""
    if value is None:
        kinds.append(0)
    elif isinstance(value, str):
        kinds.append(1)
        strs.append(value)
    elif isinstance(value, int):
        kinds.append(2)
        ints.append(value)
    else:
        kinds.append(3)
        ints.append(len(value))
        for v in value:
            _flatten(v, kinds, strs, ints)


def _execute_flat(cmd: str, args: list[str]) -> tuple[list[int], list[str], list[int]]:
    try:
        reply = _server().execute([cmd.encode(), *(a.encode() for a in args)])
    except RuntimeError as exc:
        raise RuntimeError(f"Redis command returned an error: {exc}") from None
    kinds: list[int] = []
    strs: list[str] = []
    ints: list[int] = []
    _flatten(reply, kinds, strs, ints)
    return kinds, strs, ints


# `redis.execute` itself is TorchScript: array replies become `List[Any]`, as in RedisAI (`str()`
# of HGETALL reads `[f, v, g, w]`, an empty reply `[]`). A Python operator cannot return such a
# list (torch infers a list's type from its elements, and fails on empty or mixed ones), so the
# operator returns the reply as flat tokens and this function rebuilds it without recursion.
_REPLY_DECODER = """
def execute(cmd: str, args: List[str]) -> Any:
    kinds, strs, ints = torch.ops.redis._execute_flat(cmd, args)
    root: List[Any] = []
    stack: List[List[Any]] = [root]
    remaining: List[int] = [1]
    si = 0
    ii = 0
    for k in kinds:
        while remaining[-1] == 0:
            stack.pop()
            remaining.pop()
        remaining[-1] -= 1
        top = stack[-1]
        if k == 0:
            top.append(None)
        elif k == 1:
            top.append(strs[si])
            si += 1
        elif k == 2:
            top.append(ints[ii])
            ii += 1
        else:
            inner: List[Any] = []
            top.append(inner)
            stack.append(inner)
            remaining.append(ints[ii])
            ii += 1
    return root[0]
"""
_redis_module: Any = None


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise TypeError("redis.asList: the value is not an array reply")
    return list(value)


def _model_execute(key: str, inputs: list[torch.Tensor], n_outputs: int) -> list[torch.Tensor]:
    arrays = [t.detach().to("cpu").contiguous().numpy() for t in inputs]
    outs = _server().model_execute(key.encode(), arrays, n_outputs)
    return [torch.from_dlpack(o) if o.dtype != "STRING" else torch.empty(0) for o in outs]


def bind() -> None:
    """Registers the `redis` and `redisAI` TorchScript operators (once per process); they run
    commands on the core of the server whose thread runs the script."""
    with _ops_lock:
        if _libs:
            return
        redis_lib = torch.library.Library("redis", "DEF")
        # CONSERVATIVE: the compiler must keep calls whose result is unused (a SET, say)
        redis_lib.define("_execute_flat(str cmd, str[] args) -> (int[], str[], int[])", alias_analysis="CONSERVATIVE")
        redis_lib.impl("_execute_flat", _execute_flat, "CompositeExplicitAutograd")
        redis_lib.define("asList(Any value) -> Any[]")
        redis_lib.impl("asList", _as_list, "CompositeExplicitAutograd")
        ai_lib = torch.library.Library("redisAI", "DEF")
        ai_lib.define("model_execute(str key, Tensor[] inputs, int num_outputs) -> Tensor[]", alias_analysis="CONSERVATIVE")
        ai_lib.impl("model_execute", _model_execute, "CompositeExplicitAutograd")
        _libs.extend([redis_lib, ai_lib])
        global _redis_module
        _redis_module = types.ModuleType("redis", "RedisAI's `redis` extension of TorchScript")
        _redis_module.execute = torch.jit.CompilationUnit(_REPLY_DECODER).execute
        _redis_module.asList = torch.ops.redis.asList


def _compile(source: str) -> torch.jit.CompilationUnit:
    # the compiler resolves free names from this frame: these make RedisAI's extensions available
    redis = _redis_module  # noqa: F841
    redisAI = torch.ops.redisAI  # noqa: F841
    return torch.jit.CompilationUnit(source)


def _arg_kinds(fn: Any) -> list[str]:
    return [str(a.type) for a in fn.schema.arguments]


ENTRY_SIGNATURE = ["List[Tensor]", "List[str]", "List[str]"]


class CompiledScript:
    def __init__(self, cu: torch.jit.CompilationUnit, device: Device, entry_points: list[str]) -> None:
        self.cu = cu
        self.device = torch_device(device)
        self.entry_points = set(entry_points)

    def _function(self, name: str) -> Any:
        try:
            return self.cu.find_function(name)
        except RuntimeError:
            return None

    def call(self, function: str, inputs: list[Any], keys: list[str], args: list[str], n_outputs: int) -> list[Any]:
        fn = self._function(function)
        if fn is None:
            raise BackendError(f"Function does not exist: {function}", verbatim=True)
        tensors = [to_torch(v, self.device, "script") for v in inputs]
        try:
            no_grad_on_this_thread()
            if function in self.entry_points or _arg_kinds(fn) == ENTRY_SIGNATURE:
                result = fn(tensors, keys, args)
            else:
                result = fn(*self._positional(function, fn, tensors))
        except BackendError:
            raise
        except Exception as exc:  # TorchScript errors (including ones raised by redis.execute)
            raise BackendError(f"ERR {script_error(exc)}") from exc
        outputs = [] if result is None else to_outputs(result)
        if n_outputs and len(outputs) != n_outputs:
            raise BackendError(
                f"ERR Function returned unexpected number of outputs - {function} "
                f"(returned {len(outputs)}, OUTPUTS has {n_outputs})"
            )
        return outputs

    @staticmethod
    def _positional(name: str, fn: Any, tensors: list[torch.Tensor]) -> list[Any]:
        """AI.SCRIPTRUN-style call: INPUTS fill the parameters in order; a trailing List[Tensor]
        parameter takes the rest (RedisAI's `$` inputs)."""
        kinds = _arg_kinds(fn)
        if len(kinds) > len(tensors):
            raise BackendError(f"Wrong number of inputs provided to function: {name}", verbatim=True)
        call: list[Any] = []
        for i, kind in enumerate(kinds):
            if kind == "Tensor":
                call.append(tensors[i])
            elif kind == "List[Tensor]":
                call.append(tensors[i:])
                break
            else:
                raise BackendError(f"Unsupported input type in function definition: {name}", verbatim=True)
        else:
            if len(tensors) > len(kinds):
                raise BackendError(f"Wrong number of inputs provided to function: {name}", verbatim=True)
        return call


def _is_error_class(head: str) -> bool:
    name = head.removeprefix("builtins.")
    return name.isidentifier() and name.endswith(("Error", "Exception"))


def script_error(exc: BaseException) -> str:
    """The message of a TorchScript error: the `SomeError: message` line, without the interpreter
    traceback, the Python frames (`At:`) after it, class names or a repeated `ERR`."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = next((ln for ln in lines if _is_error_class(ln.partition(": ")[0])), lines[-1] if lines else type(exc).__name__)
    while True:
        head, sep, rest = msg.partition(": ")
        if sep and _is_error_class(head):
            msg = rest
        else:
            break
    return msg.removeprefix("ERR ")


def compile_script(source: str, device: Device, entry_points: list[str]) -> CompiledScript:
    """Compiles once at store time; any error is TorchScript's message and nothing is stored."""
    if device.is_gpu:
        torch_device(device)  # a clear error when the GPU is missing
    try:
        cu = _compile(source)
    except Exception as exc:  # torch.jit.frontend errors, RuntimeError from the compiler
        # RedisAI keeps the compiler's spacing (its caret lines line up), one space per newline
        text = str(exc).replace("\r", "").replace("\n", " ") or type(exc).__name__
        raise BackendError(text, verbatim=True) from exc
    for name in entry_points:
        fn = None
        try:
            fn = cu.find_function(name)
        except RuntimeError:
            pass
        if fn is None:
            raise BackendError(f"Function {name} does not exist in the given script.", verbatim=True)
        kinds = _arg_kinds(fn)
        if len(kinds) != 3:
            raise BackendError(f"Wrong number of inputs in function {name}. Expected 3 but was {len(kinds)}", verbatim=True)
        if kinds != ENTRY_SIGNATURE:
            raise BackendError(
                f"Wrong inputs type in function {name}. Expected signature similar to: "
                f"def {name}(tensors: List[Tensor], keys: List[str], args: List[str])",
                verbatim=True,
            )
    return CompiledScript(cu, device, entry_points)


__all__ = ["CompiledScript", "bind", "compile_script", "np"]
