"""ONNX models run through onnxruntime's C API (loaded by the server core from the wheel's
libonnxruntime.so): which models take that path, replies identical to the Python binding's
(results and onnxruntime's error lines), MODEL_EXECUTION_TIMEOUT ending a run, and outputs kept in
onnxruntime's memory released once overwritten."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.clients import run_clients
from tests.support.server import ServerProcess

ort = pytest.importorskip("onnxruntime")


def adapter(**options: int):
    from redisai_fast.backends import Options
    from redisai_fast.backends import onnx as onnx_backend

    return onnx_backend, onnx_backend.create(Options(**options))


def test_cpu_models_with_plain_tensors_load_through_the_c_api() -> None:
    from redisai_fast import _core
    from redisai_fast.backends import Device

    _, backend = adapter()
    assert backend._c_api is not None and Path(backend._c_api).name.startswith("libonnxruntime.so")
    m = backend.load(models.onnx_linear(), Device.parse("CPU"), [], [])
    assert type(m).__name__ == "OnnxNativeModel"
    assert (m.input_names, m.output_names) == (["x"], ["y"])
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    out = m.run([_core.tensor_view(x)])
    np.testing.assert_array_equal(np.asarray(out[0]), models.linear_expected(x))
    from redisai_fast.backends import BackendError

    with pytest.raises(BackendError) as e:  # the message the binding's OnnxModel gives
        m.run([_core.tensor_view(x), _core.tensor_view(x)])
    assert e.value.message == "ERR Expected 1 inputs but got 2"
    # STRING tensors, and a capped arena (BACKEND_MEMORY_LIMIT), keep onnxruntime's Python session
    assert type(backend.load(models.onnx_string_identity(), Device.parse("CPU"), [], [])).__name__ == "OnnxModel"
    _, capped = adapter(backend_memory_limit_mb=64)
    assert type(capped.load(models.onnx_linear(), Device.parse("CPU"), [], [])).__name__ == "OnnxModel"


def test_the_c_api_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    mod, _ = adapter()
    monkeypatch.setenv("REDISAI_FAST_ONNX_C_API", "0")
    assert mod.c_api_library() is None


def test_a_model_that_does_not_load_fails_as_through_the_binding() -> None:
    from redisai_fast.backends import BackendError, Device

    _, backend = adapter()
    with pytest.raises(BackendError) as e:
        backend.load(b"not a model", Device.parse("CPU"), [], [])
    assert e.value.message == "Failed to load model because protobuf parsing failed."


@pytest.fixture(scope="module")
def binding_server():
    """A second server whose ONNX models all run through onnxruntime's Python binding."""
    with ServerProcess(env={"REDISAI_FAST_ONNX_C_API": "0"}) as s:
        yield s


def replies(port: int, commands: list[list[object]]) -> list[object]:
    r = redis.Redis(port=port, protocol=2)
    r.flushall()
    out: list[object] = []
    for cmd in commands:
        try:
            out.append(r.execute_command(*cmd))
        except redis.ResponseError as e:
            out.append(("error", str(e)))
    r.close()
    return out


def test_replies_are_the_bindings_to_the_byte(server: ServerProcess, binding_server: ServerProcess) -> None:
    x = np.array([[1, 2, 3, 4], [-1, 0.5, 0, 2]], dtype=np.float32)
    a = np.array([[1, 2]], dtype=np.float32)
    commands: list[list[object]] = [
        ["AI.MODELSTORE", "lin", "ONNX", "CPU", "BLOB", models.onnx_linear()],
        ["AI.MODELSTORE", "two", "ONNX", "CPU", "BATCHSIZE", 4, "BLOB", models.onnx_two_in_two_out()],
        ["AI.MODELSTORE", "str", "ONNX", "CPU", "BLOB", models.onnx_string_identity()],
        ["AI.MODELSTORE", "bad", "ONNX", "CPU", "BLOB", b"garbage"],
        ["AI.TENSORSET", "x", "FLOAT", 2, 4, "BLOB", x.tobytes()],
        ["AI.MODELEXECUTE", "lin", "INPUTS", 1, "x", "OUTPUTS", 1, "y"],
        ["AI.TENSORGET", "y", "META", "BLOB"],
        ["AI.TENSORSET", "a", "FLOAT", 1, 2, "BLOB", a.tobytes()],
        ["AI.MODELEXECUTE", "two", "INPUTS", 2, "a", "a", "OUTPUTS", 2, "s", "p"],
        ["AI.TENSORGET", "s", "VALUES"],
        ["AI.TENSORGET", "p", "VALUES"],
        ["AI.TENSORSET", "i", "INT32", 2, 4, "VALUES", 1, 2, 3, 4, 5, 6, 7, 8],
        ["AI.MODELEXECUTE", "lin", "INPUTS", 1, "i", "OUTPUTS", 1, "y"],  # wrong type
        ["AI.TENSORSET", "w", "FLOAT", 2, 3, "VALUES", 1, 2, 3, 4, 5, 6],
        ["AI.MODELEXECUTE", "lin", "INPUTS", 1, "w", "OUTPUTS", 1, "y"],  # wrong shape
        ["AI.TENSORSET", "st", "STRING", 2, "VALUES", "ab", "c"],
        ["AI.MODELEXECUTE", "str", "INPUTS", 1, "st", "OUTPUTS", 1, "t"],
        ["AI.TENSORGET", "t", "VALUES"],
        ["AI.MODELEXECUTE", "lin", "INPUTS", 1, "st", "OUTPUTS", 1, "y"],  # a STRING tensor to a FLOAT input
        ["AI.DAGEXECUTE", "LOAD", 1, "x", "|>", "AI.MODELEXECUTE", "lin", "INPUTS", 1, "x", "OUTPUTS", 1, "d", "|>",
         "AI.TENSORGET", "d", "VALUES"],
    ]
    ours, theirs = replies(server.port, commands), replies(binding_server.port, commands)
    assert ours == theirs
    assert ours[6][5] == models.linear_expected(x).tobytes()
    assert ours[12] == ("error", "Unexpected input data type. Actual: (tensor(int32)) , expected: (tensor(float))")
    assert ours[17] == [b"ab", b"c"]


def test_batched_requests_of_several_clients_get_their_own_rows(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port, protocol=2)
    r.flushall()
    r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BATCHSIZE", 8, "MINBATCHSIZE", 8, "BLOB", models.onnx_linear())
    got: dict[int, bytes] = {}

    def client(i: int) -> None:
        c = redis.Redis(port=server.port, protocol=2)
        x = np.full((1, 4), i, dtype=np.float32)
        c.execute_command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 4, "BLOB", x.tobytes())
        c.execute_command("AI.MODELEXECUTE", "lin", "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{i}")
        got[i] = c.execute_command("AI.TENSORGET", f"y{i}", "BLOB")
        c.close()

    run_clients(8, client, timeout=30)
    for i in range(8):
        want = models.linear_expected(np.full((1, 4), i, dtype=np.float32))
        np.testing.assert_allclose(np.frombuffer(got[i], np.float32).reshape(1, 3), want, rtol=1e-6)
    info = dict(zip(*[iter(r.execute_command("AI.INFO", "lin"))] * 2))
    assert (info[b"calls"], info[b"samples"]) == (8, 8)
    r.close()


@pytest.mark.parametrize("c_api", ["1", "0"])
def test_execution_timeout_ends_a_run(c_api: str) -> None:
    with ServerProcess("--MODEL_EXECUTION_TIMEOUT", "300", env={"REDISAI_FAST_ONNX_C_API": c_api}) as s:
        r = redis.Redis(port=s.port, protocol=2, socket_timeout=60)
        r.execute_command("AI.MODELSTORE", "loop", "ONNX", "CPU", "BLOB", models.onnx_endless())
        r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 0)
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command("AI.MODELEXECUTE", "loop", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        assert str(e.value) == ("Non-zero status code returned while running Loop node. Name:'' Status Message: "
                                "Exiting due to terminate flag being set to true.")
        assert r.ping()  # and the server goes on
        r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BLOB", models.onnx_linear())
        r.execute_command("AI.TENSORSET", "x4", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
        assert r.execute_command("AI.MODELEXECUTE", "lin", "INPUTS", 1, "x4", "OUTPUTS", 1, "y") == b"OK"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_overwritten_outputs_are_freed(server: ServerProcess) -> None:
    """4 MiB outputs, overwritten 2000 times: leaking them would take 8 GiB."""
    r = redis.Redis(port=server.port, protocol=2)
    r.flushall()
    r.execute_command("AI.MODELSTORE", "big", "ONNX", "CPU", "BLOB", models.onnx_expand(1 << 20))
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 2)
    sock = socket.create_connection(("127.0.0.1", server.port))
    cmd = b"*8\r\n$15\r\nAI.MODELEXECUTE\r\n$3\r\nbig\r\n$6\r\nINPUTS\r\n$1\r\n1\r\n$1\r\nx\r\n$7\r\nOUTPUTS\r\n$1\r\n1\r\n$1\r\ny\r\n"

    def run(n: int) -> None:
        for _ in range(n // 50):
            sock.sendall(cmd * 50)
            got = b""
            while got.count(b"+OK\r\n") < 50:
                got += sock.recv(65536)

    run(200)
    before = rss_kib(server.pid)
    run(2000)
    grown = rss_kib(server.pid) - before
    sock.close()
    assert grown < 200 * 1024, f"RSS grew {grown} KiB over 2000 runs"
    _, _, _, shape, _, values = r.execute_command("AI.TENSORGET", "y", "META", "BLOB")
    assert shape == [1 << 20] and np.all(np.frombuffer(values, np.float32) == 2)
    r.close()
