"""redisai-py 1.3.0 model API against redisai-fast: modelstore/modelexecute/modelset/modelrun/
modelget/modeldel, infoget/inforeset, modelscan."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.models import linear_expected


def test_modelstore_modelexecute(con, model_blob) -> None:
    assert con.modelstore("m", "onnx", "cpu", model_blob("onnx_linear"), tag="v7") == "OK"
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    con.tensorset("x", x)
    assert con.modelexecute("m", inputs=["x"], outputs=["y"]) == "OK"
    np.testing.assert_allclose(con.tensorget("y"), linear_expected(x), rtol=1e-6)
    meta = con.modelget("m", meta_only=True)
    assert meta["backend"] == "ONNX" and meta["device"] == "cpu" and meta["tag"] == "v7"
    assert meta["inputs"] == ["x"] and meta["outputs"] == ["y"]
    assert con.modelget("m")["blob"] == model_blob("onnx_linear")
    info = con.infoget("m")
    assert info["calls"] == 1 and info["samples"] == 1
    assert con.inforeset("m") == "OK"
    assert con.infoget("m")["calls"] == 0
    assert con.modelscan() == [["m", "v7"]]
    assert con.modeldel("m") == "OK"


def test_modelset_modelrun_and_batching_args(con, model_blob) -> None:
    assert con.modelset("t", "torch", "cpu", model_blob("torch_linear"), batch=4, minbatch=1) == "OK"
    x = np.ones((2, 4), dtype=np.float32)
    con.tensorset("x", x)
    assert con.modelrun("t", ["x"], ["y"]) == "OK"
    np.testing.assert_allclose(con.tensorget("y"), linear_expected(x), rtol=1e-6)
    meta = con.modelget("t", meta_only=True)
    assert meta["batchsize"] == 4 and meta["minbatchsize"] == 1


def test_tf_model_with_names(con, model_blob) -> None:
    assert con.modelstore("tf", "TF", "CPU", model_blob("tf_mul"), inputs=["a", "b"], outputs=["mul"]) == "OK"
    con.tensorset("a", np.array([2, 3], dtype=np.float32))
    con.tensorset("b", np.array([2, 3], dtype=np.float32))
    assert con.modelexecute("tf", inputs=["a", "b"], outputs=["c"]) == "OK"
    np.testing.assert_array_equal(con.tensorget("c"), np.array([4, 9], dtype=np.float32))


def test_timeout(con, model_blob) -> None:
    assert con.modelstore("m", "ONNX", "CPU", model_blob("onnx_linear")) == "OK"
    con.tensorset("x", np.ones((1, 4), dtype=np.float32))
    assert con.modelexecute("m", inputs=["x"], outputs=["y"], timeout=5000) == "OK"


def test_errors(con, model_blob) -> None:
    import redis

    with pytest.raises(redis.ResponseError, match="model key is empty"):
        con.modelexecute("nope", inputs=["x"], outputs=["y"])
    with pytest.raises(redis.ResponseError, match="protobuf parsing failed"):
        con.modelstore("m", "ONNX", "CPU", b"not a model")
    assert not con.exists("m")
