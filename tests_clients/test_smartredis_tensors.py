"""SmartRedis 0.6.1 (SmartSim's client) against redisai-fast, non-cluster mode: tensors."""

from __future__ import annotations

import numpy as np
import pytest
from smartredis import Client


@pytest.fixture
def client(server):
    c = Client(address=f"127.0.0.1:{server.port}", cluster=False)
    c.flush_db([f"127.0.0.1:{server.port}"])
    return c


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16])
def test_put_get_tensor(client, dtype) -> None:
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    client.put_tensor("t", a)
    b = client.get_tensor("t")
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(a, b)


def test_exists_poll_delete_rename_copy(client) -> None:
    a = np.ones((4, 4), dtype=np.float32)
    client.put_tensor("x", a)
    assert client.tensor_exists("x")
    assert client.poll_tensor("x", 10, 5)
    client.copy_tensor("x", "y")
    np.testing.assert_array_equal(client.get_tensor("y"), a)
    client.rename_tensor("y", "z")
    assert not client.tensor_exists("y")
    client.delete_tensor("z")
    assert not client.tensor_exists("z")

