"""GPU placement end to end: TORCH models and scripts on `GPU` and `GPU:0`, batching on the GPU, a
DAG with CPU and GPU steps, DLPack with one copy each way and none on the host, and ONNX / TF on
the GPU where their CUDA builds are installed. Runs only where torch sees a CUDA device
(scripts/gpu-check.sh runs it there; the CPU-side checks of device parsing and the missing-CUDA
errors are in test_models.py and test_backends.py)."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.clients import run_clients


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="no CUDA device on this machine (torch sees none)")]

X = np.array([[1, 2, 3, 4]], dtype=np.float32)


def onnx_cuda_reason() -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (the CPU wheel; onnxruntime-gpu brings it)"
    return None


def tf_gpu_reason() -> str | None:
    try:
        import tensorflow as tf
    except ImportError:
        return "tensorflow is not installed"
    if not tf.config.list_physical_devices("GPU"):
        return f"tensorflow {tf.__version__} sees no GPU (a CPU build, or no CUDA libraries for it)"
    return None


def run(r: redis.Redis, key: str, x: np.ndarray = X) -> np.ndarray:
    r.execute_command("AI.TENSORSET", "x", "FLOAT", *x.shape, "BLOB", x.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    return np.frombuffer(r.execute_command("AI.TENSORGET", "y", "BLOB"), np.float32).reshape(x.shape[0], -1)


@pytest.mark.parametrize("device", ["GPU", "GPU:0"])
def test_torch_model_on_gpu(r: redis.Redis, device: str) -> None:
    r.execute_command("AI.MODELSTORE", "m", "TORCH", device, "BLOB", models.torch_linear())
    assert r.execute_command("AI.MODELGET", "m", "META")[3] == device.encode()
    np.testing.assert_allclose(run(r, "m"), models.linear_expected(X), rtol=1e-5)


@pytest.mark.parametrize("device", ["GPU", "GPU:0"])
def test_onnx_model_on_gpu(r: redis.Redis, device: str) -> None:
    reason = onnx_cuda_reason()
    if reason:
        pytest.skip(reason)
    r.execute_command("AI.MODELSTORE", "m", "ONNX", device, "BLOB", models.onnx_linear())
    np.testing.assert_allclose(run(r, "m"), models.linear_expected(X), rtol=1e-5)


def test_tf_model_on_gpu(r: redis.Redis) -> None:
    reason = tf_gpu_reason()
    if reason:
        pytest.skip(reason)
    r.execute_command("AI.MODELSTORE", "m", "TF", "GPU", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "BLOB", models.tf_linear())
    np.testing.assert_allclose(run(r, "m"), models.linear_expected(X), rtol=1e-5)


def test_gpu_index_that_does_not_exist_is_refused(r: redis.Redis) -> None:
    import torch

    n = torch.cuda.device_count()
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("AI.MODELSTORE", "m", "TORCH", f"GPU:{n}", "BLOB", models.torch_linear())
    assert str(e.value) == (f"GPU requested but TORCH found no CUDA device for GPU:{n} ({n} visible); "
                            "use CPU or run where a GPU exists")
    assert r.exists("m") == 0


@pytest.mark.parametrize("device", ["GPU", "GPU:0"])
def test_script_on_gpu(r: redis.Redis, device: str) -> None:
    src = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
    r.execute_command("AI.SCRIPTSTORE", "s", device, "ENTRY_POINTS", 1, "f", "SOURCE", src)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", X.tobytes())
    r.execute_command("AI.SCRIPTEXECUTE", "s", "f", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    got = np.frombuffer(r.execute_command("AI.TENSORGET", "y", "BLOB"), np.float32)
    np.testing.assert_array_equal(got, X.ravel() * 2)


def test_batching_on_gpu(server, r: redis.Redis) -> None:
    """Eight clients, MINBATCHSIZE 8: one run on the GPU sees all eight rows, and each client gets its own."""
    r.execute_command("AI.MODELSTORE", "rep", "TORCH", "GPU", "BATCHSIZE", 8, "MINBATCHSIZE", 8, "BLOB", models.torch_batch_reporter())
    r.execute_command("AI.MODELSTORE", "lin", "TORCH", "GPU", "BATCHSIZE", 8, "MINBATCHSIZE", 8, "BLOB", models.torch_linear())
    seen: dict[tuple[str, int], np.ndarray] = {}

    def client(i: int) -> None:
        c = redis.Redis(port=server.port, protocol=2, socket_timeout=60)
        x = np.full((1, 4), i, dtype=np.float32)
        c.execute_command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 4, "BLOB", x.tobytes())
        for key in ("rep", "lin"):
            c.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"{key}{i}")
            seen[key, i] = np.frombuffer(c.execute_command("AI.TENSORGET", f"{key}{i}", "BLOB"), np.float32)
        c.close()

    run_clients(8, client)
    for i in range(8):
        assert seen["rep", i].tolist() == [8.0]
        np.testing.assert_allclose(seen["lin", i], models.linear_expected(np.full((1, 4), i, np.float32)).ravel(), rtol=1e-5)


def test_dag_with_cpu_and_gpu_steps(r: redis.Redis) -> None:
    """A CPU script, a GPU model and a GPU script in one DAG; intermediate tensors move between devices."""
    src = ("def double(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
           "def plus_one(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] + 1\n")
    r.execute_command("AI.SCRIPTSTORE", "pre", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", src)
    r.execute_command("AI.SCRIPTSTORE", "post", "GPU", "ENTRY_POINTS", 1, "plus_one", "SOURCE", src)
    r.execute_command("AI.MODELSTORE", "lin", "TORCH", "GPU", "BLOB", models.torch_linear())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", X.tobytes())
    reply = r.execute_command(
        "AI.DAGEXECUTE", "LOAD", 1, "x", "PERSIST", 1, "out", "|>",
        "AI.SCRIPTEXECUTE", "pre", "double", "INPUTS", 1, "x", "OUTPUTS", 1, "a", "|>",
        "AI.MODELEXECUTE", "lin", "INPUTS", 1, "a", "OUTPUTS", 1, "b", "|>",
        "AI.SCRIPTEXECUTE", "post", "plus_one", "INPUTS", 1, "b", "OUTPUTS", 1, "out")
    assert reply == [b"OK", b"OK", b"OK"]
    got = np.frombuffer(r.execute_command("AI.TENSORGET", "out", "BLOB"), np.float32)
    np.testing.assert_allclose(got, models.linear_expected(X * 2).ravel() + 1, rtol=1e-5)


def test_dlpack_one_copy_each_way() -> None:
    """A stored tensor reaches torch without a host copy (DLPack shares its buffer) and goes to the
    GPU in one copy; the output comes back in one copy into host memory that the server keeps as is."""
    import torch
    from redisai_fast import _core
    from redisai_fast.backends import Device, Options
    from redisai_fast.backends import torch as torch_backend

    # 4096 rows: tensors of 32 KiB and more keep their buffers (smaller ones are copied inline)
    host = np.arange(4096 * 4, dtype=np.float32).reshape(4096, 4) / 1000
    view = _core.tensor_view(host)
    on_host = torch_backend.to_torch(view, torch.device("cpu"))
    stored = np.asarray(view)
    assert on_host.data_ptr() == stored.__array_interface__["data"][0]  # no host copy in
    on_gpu = torch_backend.to_torch(view, torch.device("cuda", 0))
    assert on_gpu.is_cuda and on_gpu.cpu().tolist() == host.tolist()

    model = torch_backend.create(Options()).load(models.torch_linear(), Device.parse("GPU:0"), [], [])
    (out,) = model.run([view])
    assert isinstance(out, np.ndarray) and out.flags["C_CONTIGUOUS"]
    kept = _core.tensor_view(out)  # what the server stores: the same host memory, no further copy
    assert np.asarray(kept).__array_interface__["data"][0] == out.__array_interface__["data"][0]
    np.testing.assert_allclose(out, models.linear_expected(host), rtol=1e-5)
