"""Model commands end to end (mostly with small ONNX models): store/get/del, execution, errors,
AI.INFO, chunking, TIMEOUT, batching, MINBATCHTIMEOUT, and loading without stopping the server."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.clients import run_clients
from tests.support.server import RawConnection, ServerProcess, encode


def err(r: redis.Redis, *cmd: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*cmd)
    return str(e.value)


def set_x(r: redis.Redis, key: str, a: np.ndarray) -> None:
    r.execute_command("AI.TENSORSET", key, "FLOAT", *a.shape, "BLOB", a.astype(np.float32).tobytes())


def get_array(r: redis.Redis, key: str) -> np.ndarray:
    _, dtype, _, shape, _, blob = r.execute_command("AI.TENSORGET", key, "META", "BLOB")
    assert dtype == b"FLOAT"
    return np.frombuffer(blob, dtype=np.float32).reshape(shape)


def test_store_execute_get(r: redis.Redis) -> None:
    assert r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "TAG", "v1", "BLOB", models.onnx_linear()) == b"OK"
    x = np.array([[1, 0, 0, 0], [0.5, 1, 2, -1]], dtype=np.float32)
    set_x(r, "x", x)
    assert r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    np.testing.assert_allclose(get_array(r, "y"), models.linear_expected(x), rtol=1e-6)
    assert r.type("m") == b"AI__MODEL"
    meta = r.execute_command("AI.MODELGET", "m", "META")
    assert meta == [b"backend", b"ONNX", b"device", b"CPU", b"tag", b"v1", b"batchsize", 0, b"minbatchsize", 0,
                    b"inputs", [b"x"], b"outputs", [b"y"], b"minbatchtimeout", 0]
    assert r.execute_command("AI.MODELGET", "m", "BLOB") == models.onnx_linear()
    full = r.execute_command("AI.MODELGET", "m")
    assert full[:16] == meta and full[16:] == [b"blob", models.onnx_linear()]
    assert r.execute_command("AI._MODELSCAN") == [[b"m", b"v1"]]


def test_old_api_modelset_modelrun(r: redis.Redis) -> None:
    assert r.execute_command("AI.MODELSET", "m", "ONNX", "CPU", "BLOB", models.onnx_linear()) == b"OK"
    set_x(r, "x", np.ones((1, 4)))
    assert r.execute_command("AI.MODELRUN", "m", "INPUTS", "x", "OUTPUTS", "y") == b"OK"
    np.testing.assert_allclose(get_array(r, "y"), models.linear_expected(np.ones((1, 4))), rtol=1e-6)


def test_multi_input_multi_output(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "mm", "ONNX", "CPU", "BLOB", models.onnx_two_in_two_out())
    a = np.array([[1, 2], [3, 4]], dtype=np.float32)
    b = np.array([[10, 20], [30, 40]], dtype=np.float32)
    set_x(r, "a", a)
    set_x(r, "b", b)
    assert r.execute_command("AI.MODELEXECUTE", "mm", "INPUTS", 2, "a", "b", "OUTPUTS", 2, "s", "p") == b"OK"
    np.testing.assert_array_equal(get_array(r, "s"), a + b)
    np.testing.assert_array_equal(get_array(r, "p"), a * b)
    assert r.execute_command("AI.MODELGET", "mm", "META")[10:14] == [b"inputs", [b"a", b"b"], b"outputs", [b"sum", b"prod"]]


def test_modelstore_errors(r: redis.Redis) -> None:
    blob = models.onnx_linear()
    assert err(r, "AI.MODELSTORE", "m", "TORCH", "BLOB", blob) == "wrong number of arguments for 'ai.modelstore' command"
    assert err(r, "AI.MODELSTORE", "m", "PYTORCH", "CPU", "BLOB", blob) == "unsupported backend"
    for dev in ("bad_device", "CPU::", "CPU:1.8", "CPU:123456"):
        assert err(r, "AI.MODELSTORE", "m", "ONNX", dev, "BLOB", blob) == "Invalid DEVICE"
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", "x", "BLOB", blob) == "Invalid argument for BATCHSIZE"
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "MINBATCHSIZE", 2, "BLOB", blob) == "MINBATCHSIZE specified without BATCHSIZE"
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", 2, "MINBATCHTIMEOUT", 5, "BLOB", blob) == (
        "MINBATCHTIMEOUT specified without MINBATCHSIZE")
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", 2, "NOT_BLOB") == "Invalid argument, expected BLOB"
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", 2, "BLOB") == "Insufficient arguments, missing model BLOB"
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "INPUTS", 1, "x", "BLOB", blob) == (
        "INPUTS argument should not be specified for this backend")
    assert err(r, "AI.MODELSTORE", "m", "TF", "CPU", "BLOB", blob) == "INPUTS not specified for TF"
    assert err(r, "AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 0, "BLOB", blob) == "Invalid argument for input_count"
    assert err(r, "AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 1, "a", "BLOB", blob) == "OUTPUTS not specified for TF"
    assert err(r, "AI.MODELSTORE", "m", "TFLITE", "CPU", "BATCHSIZE", 2, "BLOB", blob) == (
        "Auto-batching not supported by the TFLITE backend")
    assert err(r, "AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", b"garbage") == (
        "Failed to load model because protobuf parsing failed.")
    assert r.exists("m") == 0


def test_gpu_without_cuda_fails_clearly(r: redis.Redis) -> None:
    msg = err(r, "AI.MODELSTORE", "g", "ONNX", "GPU:1", "BLOB", models.onnx_linear())
    assert msg.startswith("GPU requested but ONNX found no CUDA device for GPU:1")
    assert r.exists("g") == 0


def test_failed_load_keeps_previous_model(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "keep", "ONNX", "CPU", "TAG", "good", "BLOB", models.onnx_linear())
    with pytest.raises(redis.ResponseError):
        r.execute_command("AI.MODELSTORE", "keep", "ONNX", "CPU", "TAG", "bad", "BLOB", b"\x00garbage")
    assert r.execute_command("AI.MODELGET", "keep", "META")[5] == b"good"
    set_x(r, "x", np.ones((1, 4)))
    assert r.execute_command("AI.MODELEXECUTE", "keep", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"


def test_newer_framework_message(r: redis.Redis) -> None:
    msg = err(r, "AI.MODELSTORE", "f", "ONNX", "CPU", "BLOB", models.onnx_future_ir())
    assert "newer onnxruntime" in msg


def test_modelstore_over_other_type_is_wrongtype(r: redis.Redis) -> None:
    r.set("s", "v")
    assert err(r, "AI.MODELSTORE", "s", "ONNX", "CPU", "BLOB", models.onnx_linear()) == (
        "WRONGTYPE Operation against a key holding the wrong kind of value")
    assert r.get("s") == b"v"


def test_execute_errors(r: redis.Redis, raw: RawConnection) -> None:
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    set_x(r, "x", np.ones((1, 4)))
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x") == "wrong number of arguments for 'AI.MODELEXECUTE' command"
    assert err(r, "AI.MODELEXECUTE", "nope", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == "model key is empty"
    assert err(r, "AI.MODELEXECUTE", "m", "TIMEOUT", 1, "INPUTS", 1, "x", "OUTPUTS") == "INPUTS not specified"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", "z", "x", "OUTPUTS", 1, "y") == "Invalid argument for input_count"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 0, "x", "OUTPUTS", 1, "y") == "Input count must be a positive integer"
    # RedisAI sends these two without the ERR code
    raw.send(encode("AI.MODELEXECUTE", "m", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y"))
    assert raw.read_reply() == "Number of keys given as INPUTS here does not match model definition"
    raw.send(encode("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 2, "y", "z"))
    assert raw.read_reply() == "Number of keys given as OUTPUTS here does not match model definition"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "bad_arg") == "Invalid argument: bad_arg"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "TIMEOUT") == "No value provided for TIMEOUT"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "TIMEOUT", 0) == "Invalid value for TIMEOUT"
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "missing", "OUTPUTS", 1, "y") == (
        "tensor key is empty or in a different shard")
    r.set("str", "v")
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "str", "OUTPUTS", 1, "y") == (
        "WRONGTYPE Operation against a key holding the wrong kind of value")
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "str") == (
        "WRONGTYPE Operation against a key holding the wrong kind of value")
    # a runtime error from the framework: wrong inner dimension
    set_x(r, "bad", np.ones((1, 3)))
    msg = err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "bad", "OUTPUTS", 1, "y")
    assert "dimensions" in msg
    r.execute_command("AI.TENSORSET", "i", "INT32", 1, 4, "VALUES", 1, 2, 3, 4)
    assert "type" in err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "i", "OUTPUTS", 1, "y").lower()
    info = r.execute_command("AI.INFO", "m")
    d = dict(zip(info[::2], info[1::2]))
    assert d[b"errors"] == 2 and d[b"calls"] == 2
    assert r.exists("y") == 0


def test_string_input_to_a_torchscript_model(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", models.torch_linear())
    r.execute_command("AI.TENSORSET", "s", "STRING", 1, 4, "VALUES", "a", "b", "c", "d")
    assert err(r, "AI.MODELEXECUTE", "m", "INPUTS", 1, "s", "OUTPUTS", 1, "y") == (
        "STRING tensors cannot be given to a TorchScript model")
    assert r.exists("y") == 0


def test_ai_info_and_resetstat(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "TAG", "t1", "BLOB", models.onnx_linear())
    set_x(r, "x", np.ones((3, 4)))
    for _ in range(5):
        r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    info = r.execute_command("AI.INFO", "m")
    assert info[:10] == [b"key", b"m", b"type", b"MODEL", b"backend", b"ONNX", b"device", b"CPU", b"tag", b"t1"]
    d = dict(zip(info[::2], info[1::2]))
    assert d[b"calls"] == 5 and d[b"samples"] == 15 and d[b"errors"] == 0 and d[b"duration"] > 0
    assert r.execute_command("AI.INFO", "m", "RESETSTAT") == b"OK"
    d = dict(zip(*[iter(r.execute_command("AI.INFO", "m"))] * 2))
    assert (d[b"calls"], d[b"samples"], d[b"duration"], d[b"errors"]) == (0, 0, 0, 0)
    assert err(r, "AI.INFO", "nope") == "cannot find run info for key"
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    d = dict(zip(*[iter(r.execute_command("AI.INFO", "m"))] * 2))
    assert d[b"calls"] == 0  # storing again starts fresh statistics


def test_modeldel_and_del(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    assert r.execute_command("AI.MODELDEL", "m") == b"OK"
    assert err(r, "AI.MODELDEL", "m") == "model key is empty"
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    assert r.delete("m") == 1
    assert err(r, "AI.MODELGET", "m") == "model key is empty"
    r.set("s", 1)
    assert err(r, "AI.MODELDEL", "s") == "WRONGTYPE Operation against a key holding the wrong kind of value"


def test_chunked_store_and_get(r: redis.Redis) -> None:
    blob = models.onnx_linear()
    chunks = [blob[i:i + 50] for i in range(0, len(blob), 50)]
    assert r.execute_command("AI.MODELSTORE", "c", "ONNX", "CPU", "BLOB", *chunks) == b"OK"
    assert r.execute_command("AI.CONFIG", "MODEL_CHUNK_SIZE", 64) == b"OK"
    try:
        assert r.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 64
        got = r.execute_command("AI.MODELGET", "c", "BLOB")
        assert isinstance(got, list) and all(len(c) <= 64 for c in got)
        assert b"".join(got) == blob
        assert b"".join(r.execute_command("AI.MODELGET", "c", "META", "BLOB")[17]) == blob
    finally:
        r.execute_command("AI.CONFIG", "MODEL_CHUNK_SIZE", 511 * 1024 * 1024)
    assert r.execute_command("AI.MODELGET", "c", "BLOB") == blob


def test_ai_config(r: redis.Redis) -> None:
    assert r.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 535822336
    assert r.execute_command("AI.CONFIG", "GET", "BACKENDSPATH").endswith(b"backends")
    assert r.execute_command("AI.CONFIG", "GET", "bad_config") is None
    assert err(r, "AI.CONFIG", "GET") == "wrong number of arguments for 'ai.config' command"
    assert r.execute_command("AI.CONFIG", "BACKENDSPATH", "/usr/lib/redis/modules/redisai/backends") == b"OK"
    assert r.execute_command("AI.CONFIG", "GET", "BACKENDSPATH") == b"/usr/lib/redis/modules/redisai/backends"
    # the spec's examples: RedisAI's native backend paths select our built-in adapters
    assert r.execute_command("AI.CONFIG", "LOADBACKEND", "ONNX", "redisai_onnxruntime/redisai_onnxruntime.so") == b"OK"
    assert r.execute_command(
        "AI.CONFIG", "LOADBACKEND", "TORCH", "/usr/lib/redis/modules/redisai/backends/redisai_torch/redisai_torch.so") == b"OK"
    assert err(r, "AI.CONFIG", "LOADBACKEND", "NOPE", "x") == "unsupported backend"
    assert err(r, "AI.CONFIG", "LOADBACKEND", "ONNX", "/no/such/file.py") == "error loading backend"
    assert err(r, "AI.CONFIG", "MODEL_CHUNK_SIZE", "0") == "MODEL_CHUNK_SIZE: invalid chunk size"
    assert err(r, "AI.CONFIG", "NOPE") == "unsupported subcommand"
    assert "ai_TORCH_version" in r.info("ai")


def test_timeout_answers_timedout(r: redis.Redis, server: ServerProcess) -> None:
    r.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", models.torch_slow())
    set_x(r, "x", np.ones((1, 64)))
    r.execute_command("AI.TENSORSET", "n_big", "INT64", 1, "VALUES", 200000)
    r.execute_command("AI.TENSORSET", "n1", "INT64", 1, "VALUES", 1)
    busy = server.raw()
    busy.send(encode("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n_big", "OUTPUTS", 1, "y"))
    time.sleep(0.2)  # the slow run now occupies the only CPU worker
    assert r.execute_command("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n1", "OUTPUTS", 1, "z", "TIMEOUT", 50) == b"TIMEDOUT"
    assert r.exists("z") == 0
    assert busy.read_reply() == "OK"
    # old form, TIMEOUT first
    assert r.execute_command("AI.MODELRUN", "slow", "TIMEOUT", 10000, "INPUTS", "x", "n1", "OUTPUTS", "z") == b"OK"


def test_blocking_only_the_calling_client(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", models.torch_slow())
    set_x(r, "x", np.ones((1, 64)))
    r.execute_command("AI.TENSORSET", "n", "INT64", 1, "VALUES", 100000)
    c = server.raw()
    # a run followed by a pipelined PING on the same connection
    c.send(encode("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n", "OUTPUTS", 1, "y") + encode("PING"))
    # another client is served while the first waits
    other = server.raw()
    assert other.command("PING") == "PONG"
    assert other.command("EXISTS", "y") == 0
    assert c.read_reply() == "OK"
    assert c.read_reply() == "PONG"  # answered only after the run, in order
    assert other.command("EXISTS", "y") == 1


@pytest.mark.parametrize("backend", ["ONNX", "TORCH"])
def test_pipelined_runs_answer_in_order(server: ServerProcess, r: redis.Redis, backend: str) -> None:
    """A pipeline of fast runs (run inline, their replies written together) mixed with a failing
    run and plain commands: every reply in order, every output from its own input."""
    blob = models.onnx_linear() if backend == "ONNX" else models.torch_linear()
    r.execute_command("AI.MODELSTORE", "lin", backend, "CPU", "BLOB", blob)
    xs = [np.full((1, 4), i, dtype=np.float32) for i in range(20)]
    for i, x in enumerate(xs):
        set_x(r, f"x{i}", x)
    c = server.raw()
    cmds = b""
    for i in range(20):
        cmds += encode("AI.MODELEXECUTE", "lin", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}")
        if i == 10:
            cmds += encode("AI.MODELEXECUTE", "lin", "INPUTS", 1, "missing", "OUTPUTS", 1, "z")
        cmds += encode("AI.TENSORGET", f"y{i}", "VALUES")
    c.send(cmds + encode("PING"))
    for i, x in enumerate(xs):
        assert c.read_reply() == "OK"
        if i == 10:
            assert str(c.read_reply()).startswith("ERR")
        got = np.array([float(v) for v in c.read_reply()], dtype=np.float32)
        np.testing.assert_allclose(got, models.linear_expected(x).ravel(), rtol=1e-6)
    assert c.read_reply() == "PONG"


def test_batching_concatenates_requests(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "rep", "ONNX", "CPU", "BATCHSIZE", 8, "MINBATCHSIZE", 4,
                      "BLOB", models.onnx_batch_reporter())
    clients = [server.raw() for _ in range(4)]
    for i, c in enumerate(clients):
        c.command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 2, "VALUES", i, i)
    for i, c in enumerate(clients):
        c.send(encode("AI.MODELEXECUTE", "rep", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}"))
    for c in clients:
        assert c.read_reply() == "OK"
    for i in range(4):
        # each client got its own row, and the model saw all four rows at once
        assert r.execute_command("AI.TENSORGET", f"y{i}", "META", "VALUES") == [
            b"dtype", b"FLOAT", b"shape", [1, 1], b"values", [b"4"]]
    d = dict(zip(*[iter(r.execute_command("AI.INFO", "rep"))] * 2))
    assert d[b"calls"] == 4 and d[b"samples"] == 4
    assert r.info("ai")["ai_queue_CPU_runs"] < r.info("ai")["ai_queue_CPU_requests"]


def test_batching_keeps_rows_apart(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BATCHSIZE", 16, "MINBATCHSIZE", 6,
                      "BLOB", models.onnx_linear())
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((rows, 4)).astype(np.float32) for rows in (1, 2, 3)]
    conns = [server.raw() for _ in xs]
    for i, (c, x) in enumerate(zip(conns, xs)):
        c.command("AI.TENSORSET", f"x{i}", "FLOAT", *x.shape, "BLOB", x.tobytes())
    for i, c in enumerate(conns):
        c.send(encode("AI.MODELEXECUTE", "lin", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}"))
    for c in conns:
        assert c.read_reply() == "OK"
    for i, x in enumerate(xs):
        np.testing.assert_allclose(get_array(r, f"y{i}"), models.linear_expected(x), rtol=1e-5)


def test_fast_model_batches_concurrent_requests_without_minbatchsize(server: ServerProcess, r: redis.Redis) -> None:
    """A fast model with only BATCHSIZE: requests that arrive together (here from 8 connections
    at once) are run as one batch by the event loop, and each client still gets its own row."""
    r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BATCHSIZE", 8, "BLOB", models.onnx_linear())
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(8)]
    conns = [server.raw() for _ in xs]
    for i, (c, x) in enumerate(zip(conns, xs)):
        c.command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 4, "BLOB", x.tobytes())
    requests = [encode("AI.MODELEXECUTE", "lin", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}") for i in range(8)]
    batched_rounds = 0
    for _ in range(30):
        before = r.info("ai")
        for c, req in zip(conns, requests):
            c.send(req)
        for c in conns:
            assert c.read_reply() == "OK"
        after = r.info("ai")
        for i, x in enumerate(xs):
            np.testing.assert_allclose(get_array(r, f"y{i}"), models.linear_expected(x), rtol=1e-5, atol=1e-6)
        assert after["ai_queue_CPU_requests"] - before["ai_queue_CPU_requests"] == 8
        if after["ai_queue_CPU_runs"] - before["ai_queue_CPU_runs"] < 8:
            batched_rounds += 1
    d = dict(zip(*[iter(r.execute_command("AI.INFO", "lin"))] * 2))
    assert d[b"calls"] == 8 * 30 and d[b"errors"] == 0
    assert batched_rounds > 0, "requests that arrived together were never batched"


def test_minbatchtimeout_releases_a_lone_request(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "rep", "ONNX", "CPU", "BATCHSIZE", 8, "MINBATCHSIZE", 4,
                      "MINBATCHTIMEOUT", 100, "BLOB", models.onnx_batch_reporter())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 2, "VALUES", 1, 1)
    assert r.execute_command("AI.MODELEXECUTE", "rep", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    assert r.execute_command("AI.TENSORGET", "y", "VALUES") == [b"1"]
    assert r.execute_command("AI.MODELGET", "rep", "META")[-2:] == [b"minbatchtimeout", 100]


def test_batch_with_wrong_output_rows_fails_each_request(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "bad", "TORCH", "CPU", "BATCHSIZE", 4, "MINBATCHSIZE", 2,
                      "BLOB", models.torch_wrong_batch())
    conns = [server.raw() for _ in range(2)]
    for i, c in enumerate(conns):
        c.command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 2, "VALUES", 1, 2)
    for i, c in enumerate(conns):
        c.send(encode("AI.MODELEXECUTE", "bad", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}"))
    for c in conns:
        assert c.read_reply() == "ERR Model did not generate the expected batch size"
    d = dict(zip(*[iter(r.execute_command("AI.INFO", "bad"))] * 2))
    assert d[b"errors"] == 2


def test_loading_does_not_stop_other_clients(server: ServerProcess, r: redis.Redis) -> None:
    blob = models.onnx_big(400)
    loader = server.raw()
    loader.send(encode("AI.MODELSTORE", "big", "ONNX", "CPU", "BLOB", blob))
    # wait until the whole request is in the server (it is then loading)
    while not r.info("clients")["blocked_clients"]:
        time.sleep(0.01)
    pings = 0
    loader.sock.setblocking(False)
    try:
        while True:
            assert r.execute_command("PING") is True
            pings += 1
            try:
                data = loader.sock.recv(100)
                loader.buf += data
                break
            except BlockingIOError:
                continue
    finally:
        loader.sock.setblocking(True)
    assert loader.read_reply() == "OK"
    assert pings > 0, "no other command was answered while the model was loading"


def test_replacing_a_model_while_requests_are_queued(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", models.torch_slow())
    set_x(r, "x", np.ones((1, 64)))
    r.execute_command("AI.TENSORSET", "n", "INT64", 1, "VALUES", 50000)
    runners = [server.raw() for _ in range(3)]
    for i, c in enumerate(runners):
        c.send(encode("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n", "OUTPUTS", 1, f"y{i}"))
    time.sleep(0.05)
    # replace and delete while those are queued or running: they finish on the model they were queued for
    assert r.execute_command("AI.MODELSTORE", "slow", "ONNX", "CPU", "BLOB", models.onnx_linear()) == b"OK"
    assert r.execute_command("AI.MODELDEL", "slow") == b"OK"
    for c in runners:
        assert c.read_reply() == "OK"
    assert server.alive()


def test_disconnect_while_blocked_does_not_break_the_server(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", models.torch_slow())
    set_x(r, "x", np.ones((1, 64)))
    r.execute_command("AI.TENSORSET", "n", "INT64", 1, "VALUES", 30000)
    for _ in range(5):
        c = server.raw()
        c.send(encode("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n", "OUTPUTS", 1, "y"))
        c.close()
    time.sleep(0.5)
    assert r.execute_command("PING") is True
    assert "unable to perform operation" not in server.log()


def test_ai_commands_inside_multi(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    set_x(r, "x", np.ones((1, 4)))
    p = r.pipeline(transaction=True)
    p.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    p.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    p.execute_command("AI.TENSORGET", "t", "VALUES")
    res = p.execute(raise_on_error=False)
    assert res[0] == b"OK"
    assert isinstance(res[1], redis.ResponseError)
    assert str(res[1]) == "Cannot run RedisAI command within a transaction or a LUA script"
    assert res[2] == [b"1"]


def test_concurrent_clients_each_get_their_rows(server: ServerProcess) -> None:
    r0 = redis.Redis(port=server.port, protocol=2)
    r0.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BATCHSIZE", 32, "BLOB", models.onnx_linear())
    errors: list[str] = []

    def client(i: int) -> None:
        c = redis.Redis(port=server.port, protocol=2)
        rng = np.random.default_rng(i)
        for j in range(30):
            x = rng.standard_normal((1 + j % 3, 4)).astype(np.float32)
            c.execute_command("AI.TENSORSET", f"cx{i}", "FLOAT", *x.shape, "BLOB", x.tobytes())
            c.execute_command("AI.MODELEXECUTE", "lin", "INPUTS", 1, f"cx{i}", "OUTPUTS", 1, f"cy{i}")
            got = get_array(c, f"cy{i}")
            if not np.allclose(got, models.linear_expected(x), rtol=1e-5):
                errors.append(f"client {i} run {j}")

    run_clients(8, client)
    assert errors == []


@pytest.mark.parametrize("backend", ["ONNX", "TORCH"])
def test_concurrent_clients_of_an_unbatched_model_each_get_their_own_run(server: ServerProcess, backend: str) -> None:
    # with several clients, fast runs of one pass over the sockets wait for its end and run there
    # one by one (no BATCHSIZE: never batched together), and their replies go out together
    r0 = redis.Redis(port=server.port, protocol=2)
    blob = models.onnx_linear() if backend == "ONNX" else models.torch_linear()
    r0.execute_command("AI.MODELSTORE", "solo", backend, "CPU", "BLOB", blob)
    errors: list[str] = []
    clients, runs = 8, 40

    def client(i: int) -> None:
        c = redis.Redis(port=server.port, protocol=2)
        rng = np.random.default_rng(100 + i)
        for j in range(runs):
            x = rng.standard_normal((1 + j % 3, 4)).astype(np.float32)
            c.execute_command("AI.TENSORSET", f"sx{i}", "FLOAT", *x.shape, "BLOB", x.tobytes())
            c.execute_command("AI.MODELEXECUTE", "solo", "INPUTS", 1, f"sx{i}", "OUTPUTS", 1, f"sy{i}")
            got = get_array(c, f"sy{i}")
            if got.shape != (x.shape[0], 3) or not np.allclose(got, models.linear_expected(x), rtol=1e-5):
                errors.append(f"client {i} run {j}")

    run_clients(clients, client)
    assert errors == []
    info = r0.execute_command("AI.INFO", "solo")
    stats = dict(zip(info[::2], info[1::2]))
    assert stats[b"calls"] == clients * runs, "one framework call per request"
    assert stats[b"samples"] == clients * sum(1 + j % 3 for j in range(runs))
