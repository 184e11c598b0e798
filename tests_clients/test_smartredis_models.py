"""SmartRedis 0.6.1 models against redisai-fast (non-cluster): set_model/run_model/model_exists,
get_model, delete_model, and the AI.CONFIG GET MODEL_CHUNK_SIZE it asks before every upload."""

from __future__ import annotations

import numpy as np
import pytest
from smartredis import Client

from tests.support.models import linear_expected


@pytest.fixture
def client(server):
    c = Client(address=f"127.0.0.1:{server.port}", cluster=False)
    c.flush_db([f"127.0.0.1:{server.port}"])
    return c


@pytest.mark.parametrize("backend,name", [("ONNX", "onnx_linear"), ("TORCH", "torch_linear")])
def test_set_run_model(client, model_blob, backend, name) -> None:
    client.set_model("m", model_blob(name), backend, device="CPU")
    assert client.model_exists("m")
    assert client.poll_model("m", 10, 5)
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 1]], dtype=np.float32)
    client.put_tensor("x", x)
    client.run_model("m", inputs=["x"], outputs=["y"])
    np.testing.assert_allclose(client.get_tensor("y"), linear_expected(x), rtol=1e-6)
    assert client.get_model("m") == model_blob(name)
    client.delete_model("m")
    assert not client.model_exists("m")


def test_tf_model_with_names(client, model_blob) -> None:
    client.set_model("tf", model_blob("tf_mul"), "TF", device="CPU", inputs=["a", "b"], outputs=["mul"])
    client.put_tensor("a", np.array([2, 3], dtype=np.float32))
    client.put_tensor("b", np.array([2, 3], dtype=np.float32))
    client.run_model("tf", inputs=["a", "b"], outputs=["c"])
    np.testing.assert_array_equal(client.get_tensor("c"), np.array([4, 9], dtype=np.float32))
