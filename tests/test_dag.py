"""DAGs end to end: the spec's examples, local tensors, LOAD/PERSIST/ROUTING/TIMEOUT, every
validation error (with the keyspace unchanged), PERSIST atomicity, parallel ops on two device
queues, and batching of a DAG's model op with another client's request."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.server import ServerProcess, encode


def err(r: redis.Redis, *cmd: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*cmd)
    return str(e.value)


@pytest.fixture
def two_out(r: redis.Redis) -> redis.Redis:
    """mymodel: one input, two outputs (classes = argmax, predictions = softmax)."""
    import io

    import torch

    class Two(torch.nn.Module):
        def forward(self, x: torch.Tensor):
            return x.argmax(dim=1), torch.softmax(x, dim=1)

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Two()), buf)
    r.execute_command("AI.MODELSTORE", "mymodel", "TORCH", "CPU", "BLOB", buf.getvalue())
    return r


def test_spec_dagrun_example(two_out: redis.Redis) -> None:
    r = two_out
    res = r.execute_command("AI.DAGRUN", "PERSIST", 1, "predictions", "|>",
                            "AI.TENSORSET", "mytensor", "FLOAT", 1, 2, "VALUES", 5, 10, "|>",
                            "AI.MODELRUN", "mymodel", "INPUTS", "mytensor", "OUTPUTS", "classes", "predictions", "|>",
                            "AI.TENSORGET", "predictions", "VALUES")
    assert res[:2] == [b"OK", b"OK"]
    p = [float(v) for v in res[2]]
    assert len(p) == 2 and p[1] > p[0] and sum(p) == pytest.approx(1)
    # only PERSIST keys reach the keyspace
    assert r.exists("predictions") == 1
    assert r.exists("mytensor") == 0 and r.exists("classes") == 0
    assert r.execute_command("AI.TENSORGET", "predictions", "VALUES") == res[2]


def test_spec_image_pipeline_with_redis_cli(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.SCRIPTSET", "imagenet_script", "CPU", "SOURCE", models.IMAGENET_SCRIPT)
    r.execute_command("AI.MODELSET", "imagenet_model", "TORCH", "CPU", "BLOB", models.torch_classifier())
    image = models.image_224()
    res = r.execute_command("AI.DAGRUN_RO", "|>",
                            "AI.TENSORSET", "image", "UINT8", 224, 224, 3, "BLOB", image, "|>",
                            "AI.SCRIPTRUN", "imagenet_script", "pre_process_3ch", "INPUTS", "image", "OUTPUTS", "temp_key1", "|>",
                            "AI.MODELRUN", "imagenet_model", "INPUTS", "temp_key1", "OUTPUTS", "temp_key2", "|>",
                            "AI.SCRIPTRUN", "imagenet_script", "post_process", "INPUTS", "temp_key2", "OUTPUTS", "output", "|>",
                            "AI.TENSORGET", "output", "VALUES")
    assert res == [b"OK", b"OK", b"OK", b"OK", [models.IMAGENET_CLASS]]
    assert r.dbsize() == 2  # nothing but the script and the model
    # the same through redis-cli (the image bytes go in as the -x argument of TENSORSET)
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), "--no-raw", "-x", "AI.DAGRUN_RO", "|>", "AI.SCRIPTRUN", "imagenet_script",
         "post_process", "INPUTS", "logits", "OUTPUTS", "output", "|>", "AI.TENSORGET", "output", "VALUES", "|>",
         "AI.TENSORSET", "logits", "FLOAT", "1", "1000", "BLOB"],
        input=np.eye(1, 1000, 111, dtype=np.float32).tobytes(), capture_output=True, timeout=30, check=False)
    assert out.stdout.decode().strip() == "(error) ERR INPUT key cannot be found in DAG"
    logits = np.eye(1, 1000, 111, dtype=np.float32)
    r.execute_command("AI.TENSORSET", "logits", "FLOAT", 1, 1000, "BLOB", logits.tobytes())
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), "--no-raw", "AI.DAGEXECUTE_RO", "LOAD", "1", "logits", "|>",
         "AI.TENSORGET", "logits", "META"], capture_output=True, timeout=30, check=False)
    assert out.stdout.decode() == '1) 1) "dtype"\n   2) "FLOAT"\n   3) "shape"\n   4) 1) (integer) 1\n      2) (integer) 1000\n'


def test_local_tensors_and_versions(r: redis.Redis) -> None:
    res = r.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "t", "|>",
                            "AI.TENSORSET", "t", "FLOAT", 1, 2, "VALUES", 5, 10, "|>",
                            "AI.TENSORGET", "t", "META", "VALUES", "|>",
                            "AI.TENSORSET", "t", "FLOAT", 1, 4, "VALUES", 20, 40, 60, 80, "|>",
                            "AI.TENSORGET", "t", "META", "VALUES")
    assert res == [b"OK", [b"dtype", b"FLOAT", b"shape", [1, 2], b"values", [b"5", b"10"]], b"OK",
                   [b"dtype", b"FLOAT", b"shape", [1, 4], b"values", [b"20", b"40", b"60", b"80"]]]
    assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [b"20", b"40", b"60", b"80"]
    r.execute_command("AI.TENSORSET", "loaded", "INT32", 2, "VALUES", 5, 10)
    assert r.execute_command("AI.DAGEXECUTE", "LOAD", 1, "loaded", "|>", "AI.TENSORGET", "loaded", "VALUES") == [[5, 10]]
    assert r.execute_command("AI.DAGEXECUTE", "ROUTING", "{1}", "|>", "AI.TENSORSET", "v1", "FLOAT", 1, 2, "VALUES", 5, 10,
                             "|>", "AI.TENSORSET", "v2", "FLOAT", 1, 2, "VALUES", 5, 10) == [b"OK", b"OK"]
    assert r.exists("v1", "v2") == 0


def test_dagexecute_with_models_and_scripts(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BLOB", models.onnx_linear())
    src = "def double(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2\n"
    r.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "double", "SOURCE", src)
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
    res = r.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "PERSIST", 1, "z", "TIMEOUT", 10000, "|>",
                            "AI.SCRIPTEXECUTE", "s", "double", "INPUTS", 1, "x", "OUTPUTS", 1, "x2", "|>",
                            "AI.MODELEXECUTE", "lin", "INPUTS", 1, "x2", "OUTPUTS", 1, "z", "|>",
                            "AI.TENSORGET", "z", "BLOB")
    assert res[:2] == [b"OK", b"OK"]
    expected = models.linear_expected(x * 2)
    np.testing.assert_allclose(np.frombuffer(res[2], np.float32).reshape(1, 3), expected, rtol=1e-6)
    assert r.exists("z") == 1 and r.exists("x2") == 0


def test_validation_errors_change_nothing(r: redis.Redis, two_out: redis.Redis) -> None:
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, 2, "VALUES", 1, 2)
    r.set("str", "v")
    before = sorted(r.keys("*"))
    cases = [
        (("AI.DAGEXECUTE", "|>"), "missing arguments for 'AI.DAGEXECUTE' command"),
        (("AI.DAGRUN", "|>", "AI.TENSORGET"), "wrong number of arguments for 'AI.DAGRUN' command"),
        (("AI.DAGEXECUTE", "ROUTING", "t", "LOAD", 1, "a"), "DAG is empty"),
        (("AI.DAGEXECUTE", "ROUTING", "t", "BAD_ARG", "|>", "AI.TENSORGET", "a"), "Invalid DAG command. Unexpected argument:  BAD_ARG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.TENSORGET", "b", "VALUES"), "INPUT key cannot be found in DAG"),
        (("AI.DAGEXECUTE", "PERSIST", 1, "nope", "|>", "AI.TENSORSET", "b", "FLOAT", 1, "VALUES", 1),
         "PERSIST key cannot be found in DAG"),
        (("AI.DAGEXECUTE_RO", "PERSIST", 1, "b", "|>", "AI.TENSORSET", "b", "FLOAT", 1, "VALUES", 1),
         "PERSIST cannot be specified in a read-only DAG"),
        (("AI.DAGRUN_RO", "PERSIST", 1, "b", "|>", "AI.TENSORSET", "b", "FLOAT", 1, "VALUES", 1),
         "PERSIST cannot be specified in a read-only DAG"),
        (("AI.DAGEXECUTE", "|>", "AI.TENSORSET", "b", "FLOAT", 1, "VALUES", 1, "|>", "AI.TENSORGET", "b"),
         "AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords"),
        (("AI.DAGEXECUTE", "ROUTING", "a", "|>", "AI.MODELEXECUTE", "mymodel", "INPUTS", 1, "a", "OUTPUTS", 2, "c", "p",
          "TIMEOUT", 100), "TIMEOUT not allowed within a DAG command"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.MODELRUN", "mymodel", "INPUTS", "a", "OUTPUTS", "c", "p"),
         "Deprecated AI.MODELRUN cannot be used in AI.DAGEXECUTE command"),
        (("AI.DAGRUN", "LOAD", 1, "a", "|>", "AI.MODELEXECUTE", "mymodel", "INPUTS", 1, "a", "OUTPUTS", 2, "c", "p"),
         "AI.MODELEXECUTE cannot be used in a deprecated AI.DAGRUN command"),
        (("AI.DAGEXECUTE_RO", "LOAD", 1, "a", "|>", "AI.SCRIPTEXECUTE", "s", "f", "INPUTS", 1, "a"),
         "AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.SET", "x", "y"), "Unsupported command within DAG"),
        (("AI.DAGEXECUTE", "LOAD", 1, "missing", "|>", "AI.TENSORGET", "missing"), "tensor key is empty or in a different shard"),
        (("AI.DAGEXECUTE", "LOAD", 1, "str", "|>", "AI.TENSORGET", "str"), "WRONGTYPE Operation against a key holding the wrong kind of value"),
        (("AI.DAGEXECUTE", "LOAD", 0, "a", "|>", "AI.TENSORGET", "a"), "invalid or negative value found in number of keys to LOAD"),
        (("AI.DAGEXECUTE", "LOAD", 5, "a", "a", "|>"), "number of keys to LOAD into DAG does not match the number of given arguments"),
        (("AI.DAGEXECUTE", "PERSIST", 2, "a", "a", "|>", "AI.TENSORGET", "a"), "PERSIST keys must be unique"),
        (("AI.DAGEXECUTE", "ROUTING", "a", "TIMEOUT", "x", "|>", "AI.TENSORGET", "a"), "Invalid value for TIMEOUT"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.TENSORGET", "a", "BLOB", "VALUES"), "both BLOB and VALUES specified"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.TENSORSET", "b", "FLOAT"), "wrong number of arguments for 'AI.TENSORSET' command"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.MODELEXECUTE", "nomodel", "INPUTS", 1, "a", "OUTPUTS", 1, "b"), "model key is empty"),
        (("AI.DAGEXECUTE", "LOAD", 1, "a", "|>", "AI.MODELEXECUTE", "mymodel", "INPUTS", 2, "a", "a", "OUTPUTS", 2, "c", "p"),
         "Number of keys given as INPUTS here does not match model definition"),
        (("AI.DAGEXECUTE", "PERSIST", 1, "str", "|>", "AI.TENSORSET", "str", "FLOAT", 1, "VALUES", 1),
         "WRONGTYPE Operation against a key holding the wrong kind of value"),
    ]
    for cmd, message in cases:
        assert err(r, *cmd) == message, cmd
    assert sorted(r.keys("*")) == before
    assert r.get("str") == b"v"


def test_persist_is_all_or_nothing(r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "lin", "ONNX", "CPU", "BLOB", models.onnx_linear())
    res = r.execute_command("AI.DAGEXECUTE", "PERSIST", 3, "good", "bad", "after", "|>",
                            "AI.TENSORSET", "good", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4, "|>",
                            "AI.TENSORSET", "wrongshape", "FLOAT", 1, 3, "VALUES", 1, 2, 3, "|>",
                            "AI.MODELEXECUTE", "lin", "INPUTS", 1, "wrongshape", "OUTPUTS", 1, "bad", "|>",
                            "AI.MODELEXECUTE", "lin", "INPUTS", 1, "good", "OUTPUTS", 1, "after", "|>",
                            "AI.TENSORGET", "good", "VALUES", "|>",
                            "AI.TENSORGET", "after", "VALUES")
    assert res[:2] == [b"OK", b"OK"]
    assert isinstance(res[2], redis.ResponseError) and "dimensions" in str(res[2])
    assert res[3] == b"NA"  # never ran
    assert res[4] == [b"1", b"2", b"3", b"4"]  # a tensor that exists is still returned
    assert res[5] == b"NA"
    assert r.exists("good", "bad", "after") == 0


def test_timeout_covers_the_whole_dag(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", models.torch_slow())
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 64)
    r.execute_command("AI.TENSORSET", "n", "INT64", 1, "VALUES", 300000)
    busy = server.raw()
    busy.send(encode("AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n", "OUTPUTS", 1, "y"))
    import time

    time.sleep(0.2)
    assert r.execute_command("AI.DAGEXECUTE", "LOAD", 2, "x", "n", "PERSIST", 1, "z", "TIMEOUT", 50, "|>",
                             "AI.MODELEXECUTE", "slow", "INPUTS", 2, "x", "n", "OUTPUTS", 1, "z") == b"TIMEDOUT"
    assert r.exists("z") == 0
    assert busy.read_reply() == "OK"


def test_ops_on_two_device_queues_overlap(r: redis.Redis) -> None:
    """Two independent script ops on CPU:1 and CPU:2: each logs its start and end in a list; when
    they run in parallel both starts come before both ends."""
    src = '''
def work(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("RPUSH", "events", "start-" + args[0])
    x = tensors[0]
    for i in range(int(args[1])):
        x = torch.tanh(x @ x.t() / 300.0 + 0.01)
    redis.execute("RPUSH", "events", "end-" + args[0])
    return x
'''
    for dev in ("CPU:1", "CPU:2"):
        r.execute_command("AI.SCRIPTSTORE", f"s{dev[-1]}", dev, "ENTRY_POINTS", 1, "work", "SOURCE", src)
    r.execute_command("AI.TENSORSET", "m", "FLOAT", 300, 300)
    res = r.execute_command("AI.DAGEXECUTE", "LOAD", 1, "m", "|>",
                            "AI.SCRIPTEXECUTE", "s1", "work", "INPUTS", 1, "m", "ARGS", 2, "A", 1500, "OUTPUTS", 1, "a", "|>",
                            "AI.SCRIPTEXECUTE", "s2", "work", "INPUTS", 1, "m", "ARGS", 2, "B", 1500, "OUTPUTS", 1, "b")
    assert res == [b"OK", b"OK"]
    events = [e.decode() for e in r.lrange("events", 0, -1)]
    assert sorted(events[:2]) == ["start-A", "start-B"], events
    assert sorted(events[2:]) == ["end-A", "end-B"], events


def test_dependent_ops_run_in_order(r: redis.Redis) -> None:
    src = '''
def step(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("RPUSH", "order", args[0])
    return tensors[0] + 1
'''
    r.execute_command("AI.SCRIPTSTORE", "s1", "CPU:1", "ENTRY_POINTS", 1, "step", "SOURCE", src)
    r.execute_command("AI.SCRIPTSTORE", "s2", "CPU:2", "ENTRY_POINTS", 1, "step", "SOURCE", src)
    res = r.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "c", "|>",
                            "AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 0, "|>",
                            "AI.SCRIPTEXECUTE", "s1", "step", "INPUTS", 1, "a", "ARGS", 1, "first", "OUTPUTS", 1, "b", "|>",
                            "AI.SCRIPTEXECUTE", "s2", "step", "INPUTS", 1, "b", "ARGS", 1, "second", "OUTPUTS", 1, "c")
    assert res == [b"OK", b"OK", b"OK"]
    assert r.lrange("order", 0, -1) == [b"first", b"second"]
    assert r.execute_command("AI.TENSORGET", "c", "VALUES") == [b"2"]


def test_dag_model_op_batches_with_another_client(server: ServerProcess, r: redis.Redis) -> None:
    r.execute_command("AI.MODELSTORE", "rep", "ONNX", "CPU", "BATCHSIZE", 4, "MINBATCHSIZE", 2,
                      "BLOB", models.onnx_batch_reporter())
    r.execute_command("AI.TENSORSET", "x1", "FLOAT", 1, 2, "VALUES", 1, 1)
    other = server.raw()
    other.send(encode("AI.MODELEXECUTE", "rep", "INPUTS", 1, "x1", "OUTPUTS", 1, "y1"))
    res = r.execute_command("AI.DAGEXECUTE", "ROUTING", "x", "|>", "AI.TENSORSET", "x2", "FLOAT", 1, 2, "VALUES", 2, 2,
                            "|>", "AI.MODELEXECUTE", "rep", "INPUTS", 1, "x2", "OUTPUTS", 1, "y2",
                            "|>", "AI.TENSORGET", "y2", "VALUES")
    assert res == [b"OK", b"OK", [b"2"]]  # the model saw two rows: this DAG's and the other client's
    assert other.read_reply() == "OK"
    assert r.execute_command("AI.TENSORGET", "y1", "VALUES") == [b"2"]


def test_dag_in_multi_is_refused(r: redis.Redis) -> None:
    p = r.pipeline(transaction=True)
    p.execute_command("AI.DAGEXECUTE", "ROUTING", "x", "|>", "AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 1)
    res = p.execute(raise_on_error=False)
    assert str(res[0]) == "Cannot run RedisAI command within a transaction or a LUA script"


def test_resp3_dag_reply(server: ServerProcess) -> None:
    c = server.raw()
    c.command("HELLO", "3")
    res = c.command("AI.DAGEXECUTE", "ROUTING", "x", "|>", "AI.TENSORSET", "a", "DOUBLE", 1, "VALUES", "0.5",
                    "|>", "AI.TENSORGET", "a", "VALUES")
    assert res == ["OK", [("double", "0.5")]]
