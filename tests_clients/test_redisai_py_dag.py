"""redisai-py 1.3.0 dag() builder against redisai-fast: DAGEXECUTE with load/persist/routing/
timeout, readonly, the deprecated DAGRUN mode, and errors raised as ResponseError."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import redis

from tests.support.models import linear_expected


def test_dag_with_routing_load_persist(con, model_blob) -> None:
    con.modelstore("m", "ONNX", "CPU", model_blob("onnx_linear"))
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    con.tensorset("x", x)
    dag = con.dag(load=["x"], persist=["y"], routing="x", timeout=10000)
    dag.modelexecute("m", inputs=["x"], outputs=["y"])
    dag.tensorget("y")
    res = dag.execute()
    assert res[0] == "OK"
    np.testing.assert_allclose(res[1], linear_expected(x), rtol=1e-6)
    np.testing.assert_allclose(con.tensorget("y"), linear_expected(x), rtol=1e-6)


def test_dag_local_tensors_and_readonly(con) -> None:
    dag = con.dag(routing="any", readonly=True)
    dag.tensorset("a", np.array([1, 2], dtype=np.float32))
    dag.tensorget("a", as_numpy=False)
    res = dag.execute()
    assert res[0] == "OK"
    assert res[1]["values"] == [1.0, 2.0]
    with pytest.raises(redis.ResponseError):
        con.tensorget("a")


def test_deprecated_dagrun_mode(con) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dag = con.dag()
        dag.tensorset("b", [3, 4], shape=(2,), dtype="int32")
        dag.tensorget("b")
        res = dag.run()
    assert res[0] == "OK"
    assert res[1].tolist() == [3, 4]


def test_dag_errors_are_response_errors(con) -> None:
    with pytest.raises(redis.ResponseError, match="tensor key is empty"):
        dag = con.dag(load=["wrongkey"])
        dag.tensorget("wrongkey")
        dag.execute()
    with pytest.raises(redis.ResponseError, match="PERSIST key cannot be found in DAG"):
        dag = con.dag(persist=["never"])
        dag.tensorset("a", np.array([1], dtype=np.float32))
        dag.execute()
