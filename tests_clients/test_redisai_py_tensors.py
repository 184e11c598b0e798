"""redisai-py 1.3.0 (the official Python client) against redisai-fast: tensors and pipelines."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.bool_])
def test_numpy_round_trip(con, dtype) -> None:
    a = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    assert con.tensorset("t", a) == "OK"
    b = con.tensorget("t")
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_values_and_meta(con) -> None:
    assert con.tensorset("v", [1, 2, 3, 4], shape=(2, 2), dtype="float") == "OK"
    assert con.tensorget("v", as_numpy=False) == {"dtype": "FLOAT", "shape": [2, 2], "values": [1.0, 2.0, 3.0, 4.0]}
    assert con.tensorget("v", meta_only=True) == {"dtype": "FLOAT", "shape": [2, 2]}


def test_pipeline_transaction_and_not(con) -> None:
    for transaction in (True, False):
        p = con.pipeline(transaction=transaction)
        p.tensorset("p1", np.array([1, 2], dtype=np.int32))
        p.tensorget("p1")
        res = p.execute()
        assert res[0] == b"OK"  # redisai-py leaves pipeline replies undecoded
        np.testing.assert_array_equal(res[1], np.array([1, 2], dtype=np.int32))


def test_errors_surface_as_response_errors(con) -> None:
    import redis

    with pytest.raises(redis.ResponseError, match="tensor key is empty"):
        con.tensorget("missing")
