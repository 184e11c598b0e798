"""SmartRedis 0.6.1 against redisai-fast, non-cluster mode: datasets (hashes + tensors), aggregation
lists, and the admin calls SmartSim makes (INFO EVERYTHING, CONFIG, SAVE, FLUSHDB, AI.INFO)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from smartredis import Client, Dataset
from smartredis.error import RedisReplyError, RedisRuntimeError


@pytest.fixture
def addr(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def client(addr):
    c = Client(address=addr, cluster=False)
    c.flush_db([addr])
    return c


def make_dataset(name: str, scale: float = 1.0) -> Dataset:
    d = Dataset(name)
    d.add_tensor("pressure", (np.arange(12, dtype=np.float64).reshape(3, 4) * scale))
    d.add_tensor("ids", np.array([1, 2, 3], dtype=np.int32))
    d.add_meta_scalar("step", np.int64(7))
    d.add_meta_scalar("dt", np.float64(0.25))
    d.add_meta_string("units", "Pa")
    d.add_meta_string("units", "s")
    return d


def assert_same_dataset(got: Dataset, scale: float = 1.0) -> None:
    np.testing.assert_array_equal(got.get_tensor("pressure"), np.arange(12, dtype=np.float64).reshape(3, 4) * scale)
    np.testing.assert_array_equal(got.get_tensor("ids"), np.array([1, 2, 3], dtype=np.int32))
    assert list(got.get_meta_scalars("step")) == [7]
    assert list(got.get_meta_scalars("dt")) == [0.25]
    assert got.get_meta_strings("units") == ["Pa", "s"]
    assert sorted(got.get_tensor_names()) == ["ids", "pressure"]


def test_dataset_round_trip(client) -> None:
    client.put_dataset(make_dataset("sim"))
    assert client.dataset_exists("sim")
    assert client.poll_dataset("sim", 10, 3)
    assert_same_dataset(client.get_dataset("sim"))


def test_dataset_copy_rename_delete(client) -> None:
    client.put_dataset(make_dataset("a", 2.0))
    client.copy_dataset("a", "b")
    assert_same_dataset(client.get_dataset("b"), 2.0)
    client.rename_dataset("b", "c")
    assert not client.dataset_exists("b")
    assert_same_dataset(client.get_dataset("c"), 2.0)
    client.delete_dataset("c")
    assert not client.dataset_exists("c")
    assert client.dataset_exists("a")
    with pytest.raises(RedisReplyError):
        client.get_dataset("c")


def test_aggregation_lists(client) -> None:
    for i in range(4):
        d = make_dataset(f"step{i}", float(i))
        client.put_dataset(d)
        client.append_to_list("steps", d)
    assert client.get_list_length("steps") == 4
    assert client.poll_list_length("steps", 4, 10, 3)
    assert client.poll_list_length_gte("steps", 2, 10, 3)
    assert client.poll_list_length_lte("steps", 5, 10, 3)
    assert not client.poll_list_length("steps", 9, 5, 2)
    got = client.get_datasets_from_list("steps")
    assert [d.get_name() for d in got] == ["step0", "step1", "step2", "step3"]
    for i, d in enumerate(got):
        assert_same_dataset(d, float(i))
    middle = client.get_dataset_list_range("steps", 1, 2)
    assert [d.get_name() for d in middle] == ["step1", "step2"]
    client.copy_list("steps", "steps2")
    assert client.get_list_length("steps2") == 4
    client.rename_list("steps2", "steps3")
    assert client.get_list_length("steps2") == 0
    assert client.get_list_length("steps3") == 4
    client.delete_list("steps3")
    assert client.get_list_length("steps3") == 0


def test_node_info_and_config(client, addr) -> None:
    info = client.get_db_node_info([addr])
    assert len(info) == 1
    sections = info[0]
    assert sections["Server"]["redis_mode"] == "standalone"
    assert int(sections["Server"]["tcp_port"]) == int(addr.rsplit(":", 1)[1])
    assert "used_memory" in sections["Memory"]
    assert "rdb_last_save_time" in sections["Persistence"]
    with pytest.raises(RedisReplyError, match="non-cluster environment"):
        client.get_db_cluster_info([addr])  # refused by SmartRedis itself in non-cluster mode (nothing is sent)
    client.config_set("lua-time-limit", "6000", addr)
    assert client.config_get("lua-time-limit", addr) == {"lua-time-limit": "6000"}
    before = int(client.get_db_node_info([addr])[0]["Persistence"]["rdb_last_save_time"])
    time.sleep(1.1)
    client.save([addr])
    after = int(client.get_db_node_info([addr])[0]["Persistence"]["rdb_last_save_time"])
    assert after > before


def test_ai_info_and_flush(client, addr, model_blob) -> None:
    client.set_model("m", model_blob("onnx_linear"), "ONNX", "CPU")
    client.put_tensor("x", np.array([[1, 2, 3, 4]], dtype=np.float32))
    client.run_model("m", ["x"], ["y"])
    client.run_model("m", ["x"], ["y"])
    info = client.get_ai_info([addr], "m")
    assert info[0]["key"] == "m" and info[0]["type"] == "MODEL" and info[0]["backend"] == "ONNX"
    assert int(info[0]["calls"]) == 2 and int(info[0]["errors"]) == 0
    # The spec (and RedisAI) answer AI.INFO key RESETSTAT with +OK; SmartRedis 0.6.1 then fails to
    # parse that status as the statistics array, after the server has reset them.
    with pytest.raises(RedisRuntimeError, match="REDIS_REPLY_STATUS"):
        client.get_ai_info([addr], "m", reset_stat=True)
    assert int(client.get_ai_info([addr], "m")[0]["calls"]) == 0
    client.flush_db([addr])
    assert not client.tensor_exists("x") and not client.model_exists("m")
