"""GPU placement end to end: models and scripts stored on GPU run there and give the CPU's answers.
Runs only where a CUDA device exists (this suite's CI machines have none; the CPU-side checks of
device parsing and the missing-CUDA errors are in test_models.py and test_backends.py)."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from tests.support import models


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="no CUDA device on this machine")]

X = np.array([[1, 2, 3, 4]], dtype=np.float32)


def run(r: redis.Redis, key: str) -> np.ndarray:
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", X.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    return np.frombuffer(r.execute_command("AI.TENSORGET", "y", "BLOB"), np.float32).reshape(1, 3)


@pytest.mark.parametrize("backend,blob", [("TORCH", models.torch_linear), ("ONNX", models.onnx_linear)])
@pytest.mark.parametrize("device", ["GPU", "GPU:0"])
def test_model_on_gpu(r: redis.Redis, backend: str, blob, device: str) -> None:
    r.execute_command("AI.MODELSTORE", "m", backend, device, "BLOB", blob())
    assert r.execute_command("AI.MODELGET", "m", "META")[3] == device.encode()
    np.testing.assert_allclose(run(r, "m"), models.linear_expected(X), rtol=1e-5)


def test_script_on_gpu(r: redis.Redis) -> None:
    src = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
    r.execute_command("AI.SCRIPTSTORE", "s", "GPU", "ENTRY_POINTS", 1, "f", "SOURCE", src)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", X.tobytes())
    r.execute_command("AI.SCRIPTEXECUTE", "s", "f", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    got = np.frombuffer(r.execute_command("AI.TENSORGET", "y", "BLOB"), np.float32)
    np.testing.assert_array_equal(got, X.ravel() * 2)
