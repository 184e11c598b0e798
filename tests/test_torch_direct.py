"""TorchScript models on the CPU are called by the server itself (inputs by DLPack, outputs as numpy
views of the result tensors): results that take the adapter's conversion instead (non-contiguous,
half precision, a parameter that requires grad, a list, not a tensor at all) come out as through
the adapter, and the adapter's own `run` gives the same."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from tests.support.models import torch_bytes

torch = pytest.importorskip("torch")


def odd_outputs() -> bytes:
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2, 3))  # requires grad

        def forward(self, x: torch.Tensor):
            return x.t(), x.half() * 2, self.w

    return torch_bytes(Odd())


def a_list() -> bytes:
    class Two(torch.nn.Module):
        def forward(self, x: torch.Tensor):
            return [x + 1, x * 3]

    return torch_bytes(Two())


def not_tensors() -> bytes:
    class Count(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> int:
            return x.shape[0]

    return torch_bytes(Count())


def values(r: redis.Redis, key: str) -> tuple[list[int], list[float]]:
    _, dtype, _, shape, _, vals = r.execute_command("AI.TENSORGET", key, "META", "VALUES")
    assert dtype == b"FLOAT"
    return shape, [float(v) for v in vals]


X = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)


def test_results_the_quick_path_does_not_take(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "odd", "TORCH", "CPU", "BLOB", odd_outputs())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, 3, "BLOB", X.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", "odd", "INPUTS", 1, "x", "OUTPUTS", 3, "t", "h", "w") == b"OK"
    assert values(r, "t") == ([3, 2], X.T.ravel().tolist())
    assert values(r, "h") == ([2, 3], (X * 2).ravel().tolist())
    assert values(r, "w") == ([2, 3], [1.0] * 6)
    r.execute_command("AI.MODELSTORE", "two", "TORCH", "CPU", "BLOB", a_list())
    assert r.execute_command("AI.MODELEXECUTE", "two", "INPUTS", 1, "x", "OUTPUTS", 2, "a", "b") == b"OK"
    assert values(r, "a") == ([2, 3], (X + 1).ravel().tolist())
    assert values(r, "b") == ([2, 3], (X * 3).ravel().tolist())


def test_a_result_that_is_not_tensors_is_the_adapters_error(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "n", "TORCH", "CPU", "BLOB", not_tensors())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, 3, "BLOB", X.tobytes())
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("AI.MODELEXECUTE", "n", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert str(e.value) == "model returned int, expected tensors"


def test_the_adapters_run_agrees() -> None:
    from redisai_fast import _core
    from redisai_fast.backends import Device, Options
    from redisai_fast.backends import torch as torch_backend

    m = torch_backend.create(Options()).load(odd_outputs(), Device.parse("CPU"), [], [])
    assert m.direct is not None and m.direct[0] == m.forward
    outs = m.run([_core.tensor_view(X)])
    assert [o.dtype for o in outs] == [np.float32] * 3
    np.testing.assert_array_equal(outs[0], X.T)
    np.testing.assert_array_equal(outs[1], X * 2)
