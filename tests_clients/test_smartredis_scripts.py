"""SmartRedis 0.6.1 scripts against redisai-fast: set_script/run_script/get_script/delete_script
(SmartRedis sends the old AI.SCRIPTSET / AI.SCRIPTRUN forms)."""

from __future__ import annotations

import numpy as np
import pytest
from smartredis import Client

SRC = "def addtwo(a, b):\n    return a + b\n\ndef double(x):\n    return x * 2\n"


@pytest.fixture
def client(server):
    c = Client(address=f"127.0.0.1:{server.port}", cluster=False)
    c.flush_db([f"127.0.0.1:{server.port}"])
    return c


def test_set_run_get_delete_script(client) -> None:
    client.set_script("s", SRC, device="CPU")
    assert client.model_exists("s")  # SmartRedis checks script keys the same way
    assert client.get_script("s") == SRC
    client.put_tensor("a", np.array([40], dtype=np.float32))
    client.put_tensor("b", np.array([2], dtype=np.float32))
    client.run_script("s", "addtwo", ["a", "b"], ["c"])
    assert client.get_tensor("c").tolist() == [42.0]
    client.run_script("s", "double", ["c"], ["d"])
    assert client.get_tensor("d").tolist() == [84.0]
    client.delete_script("s")
    assert not client.model_exists("s")
