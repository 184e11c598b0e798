"""TorchScript scripts end to end: both API generations, `$` variadic inputs, entry points,
redis.execute and redisAI.model_execute inside scripts, and every error path."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.server import RawConnection, ServerProcess, encode

ADDTWO = "def addtwo(a, b):\n    return a + b\n"
ADDN = "def addn(a, args : List[Tensor]):\n    return a + torch.stack(args).sum()\n"

REDIS_SCRIPT = '''
def redis_string_int_to_tensor(redis_value: Any):
    return torch.tensor(int(str(redis_value)))

def redis_string_float_to_tensor(redis_value: Any):
    return torch.tensor(float(str((redis_value))))

def int_set_get(tensors: List[Tensor], keys: List[str], args: List[str]):
    key = keys[0]
    value = args[0]
    redis.execute("SET", key, value)
    res = redis.execute("GET", key)
    return redis_string_int_to_tensor(res)

def int_set_incr(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[0], args[0])
    res = redis.execute("INCR", keys[0])
    return redis_string_int_to_tensor(res)

def float_set_get(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[0], args[0])
    return redis_string_float_to_tensor(redis.execute("GET", keys[0]))

def int_list(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("RPUSH", keys[0], args[0])
    redis.execute("RPUSH", keys[0], args[1])
    values = redis.asList(redis.execute("LRANGE", keys[0], "0", "2"))
    l = [torch.tensor(int(str(v))).reshape(1, 1) for v in values]
    return torch.cat(l, dim=0)

def hash_values(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("HSET", [keys[0]] + args)
    values = redis.asList(redis.execute("HVALS", keys[0]))
    l = [torch.tensor(int(str(v))).reshape(1, 1) for v in values]
    return torch.cat(l, dim=0)

def big_int(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[0], "4294967300")
    return redis_string_int_to_tensor(redis.execute("INCR", keys[0]))

def missing_is_none(tensors: List[Tensor], keys: List[str], args: List[str]):
    v = redis.execute("GET", keys[0])
    return torch.tensor(len(str(v)))

def empty_list(tensors: List[Tensor], keys: List[str], args: List[str]):
    return torch.tensor(len(redis.asList(redis.execute("LRANGE", keys[0], "0", "-1"))))

def reply_text(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[0], str(redis.execute(args[0], args[1:])))
    return tensors[0]

def command_error(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[1], "written before the error")
    redis.execute("HGET", keys[0], "field")
    return tensors[0]

def run_model(tensors: List[Tensor], keys: List[str], args: List[str]):
    return redisAI.model_execute(keys[0], tensors, 1)

def run_model_two(tensors: List[Tensor], keys: List[str], args: List[str]):
    a = torch.tensor([[2.0, 3.0], [2.0, 3.0]])
    b = torch.tensor([[2.0, 3.0], [2.0, 3.0]])
    return redisAI.model_execute(keys[0], [a, b], 1)

def model_via_execute(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("AI.MODELEXECUTE", keys[0], "INPUTS", "1", "x", "OUTPUTS", "1", "y")
    return tensors[0]

def two_outputs(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] + 1, tensors[0] * 2

def as_list_outputs(tensors: List[Tensor], keys: List[str], args: List[str]):
    return [tensors[0] + 1, tensors[0] * 2]

def fails(tensors: List[Tensor], keys: List[str], args: List[str]):
    l = [tensors[0]]
    return l[5]

def slow(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    for i in range(int(args[0])):
        x = torch.tanh(x @ x.t() / 100.0)
    return x
'''

ENTRY_POINTS = ["int_set_get", "int_set_incr", "float_set_get", "int_list", "hash_values", "big_int", "missing_is_none",
                "empty_list", "reply_text", "command_error", "run_model", "run_model_two", "model_via_execute", "two_outputs",
                "as_list_outputs", "fails", "slow"]


def err(r: redis.Redis, *cmd: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*cmd)
    return str(e.value)


@pytest.fixture
def rs(r: redis.Redis) -> redis.Redis:
    assert r.execute_command("AI.SCRIPTSTORE", "rs", "CPU", "ENTRY_POINTS", len(ENTRY_POINTS), *ENTRY_POINTS,
                             "SOURCE", REDIS_SCRIPT) == b"OK"
    return r


def test_spec_scriptset_example_with_redis_cli(server: ServerProcess, r: redis.Redis) -> None:
    # the reference's example has an extra "addtwo": RedisAI answers it with an arity error
    out = subprocess.run(["redis-cli", "-p", str(server.port), "-x", "AI.SCRIPTSET", "myscript", "addtwo", "CPU", "TAG",
                          "myscript:v0.1", "SOURCE"], input=ADDTWO.encode(), capture_output=True, timeout=30, check=False)
    assert out.stdout.strip() == b"ERR wrong number of arguments for 'ai.scriptset' command"
    out = subprocess.run(["redis-cli", "-p", str(server.port), "-x", "AI.SCRIPTSET", "myscript", "CPU", "TAG",
                          "myscript:v0.1", "SOURCE"], input=ADDTWO.encode(), capture_output=True, timeout=60, check=False)
    assert out.stdout.strip() == b"OK"
    assert r.execute_command("AI.SCRIPTGET", "myscript") == [
        b"device", b"CPU", b"tag", b"myscript:v0.1", b"Entry Points", [], b"source", ADDTWO.encode()]
    assert r.execute_command("AI.SCRIPTGET", "myscript", "META") == [
        b"device", b"CPU", b"tag", b"myscript:v0.1", b"Entry Points", []]
    assert r.execute_command("AI.SCRIPTGET", "myscript", "SOURCE") == ADDTWO.encode()
    assert r.type("myscript") == b"AI_SCRIPT"
    assert r.execute_command("AI._SCRIPTSCAN") == [[b"myscript", b"myscript:v0.1"]]


def test_spec_scriptrun_addtwo_and_addn(r: redis.Redis) -> None:
    r.execute_command("AI.SCRIPTSET", "myscript", "CPU", "SOURCE", ADDTWO + ADDN)
    r.execute_command("AI.TENSORSET", "mytensor1", "FLOAT", 1, "VALUES", 40)
    r.execute_command("AI.TENSORSET", "mytensor2", "FLOAT", 1, "VALUES", 2)
    assert r.execute_command("AI.SCRIPTRUN", "myscript", "addtwo", "INPUTS", "mytensor1", "mytensor2",
                             "OUTPUTS", "result") == b"OK"
    assert r.execute_command("AI.TENSORGET", "result", "VALUES") == [b"42"]
    assert r.execute_command("AI.TENSORGET", "result", "META", "VALUES") == [
        b"dtype", b"FLOAT", b"shape", [1], b"values", [b"42"]]
    r.execute_command("AI.TENSORSET", "mytensor2", "FLOAT", 1, "VALUES", 1)
    r.execute_command("AI.TENSORSET", "mytensor3", "FLOAT", 1, "VALUES", 1)
    assert r.execute_command("AI.SCRIPTRUN", "myscript", "addn", "INPUTS", "mytensor1", "$", "mytensor2", "mytensor3",
                             "OUTPUTS", "result") == b"OK"
    assert r.execute_command("AI.TENSORGET", "result", "VALUES") == [b"42"]
    # the new command on an old-style function: INPUTS map to its parameters
    assert r.execute_command("AI.SCRIPTEXECUTE", "myscript", "addtwo", "INPUTS", 2, "mytensor1", "mytensor2",
                             "OUTPUTS", 1, "r2") == b"OK"
    assert r.execute_command("AI.TENSORGET", "r2", "VALUES") == [b"41"]
    info = dict(zip(*[iter(r.execute_command("AI.INFO", "myscript"))] * 2))
    assert info[b"type"] == b"SCRIPT" and info[b"backend"] == b"TORCH" and info[b"samples"] == -1
    assert info[b"calls"] == 3 and info[b"errors"] == 0
    assert r.execute_command("AI.INFO", "myscript", "RESETSTAT") == b"OK"
    info = dict(zip(*[iter(r.execute_command("AI.INFO", "myscript"))] * 2))
    assert info[b"calls"] == 0 and info[b"samples"] == -1


def test_redis_execute_set_get_example(rs: redis.Redis) -> None:
    assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", "int_set_get", "KEYS", 1, "x{1}", "ARGS", 1, 3, "OUTPUTS", 1, "y{1}") == b"OK"
    assert rs.execute_command("AI.TENSORGET", "y{1}", "VALUES") == [3]
    assert rs.execute_command("AI.TENSORGET", "y{1}", "META") == [b"dtype", b"INT64", b"shape", []]  # a scalar
    assert rs.get("x{1}") == b"3"


def test_redis_execute_reply_types(rs: redis.Redis) -> None:
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "int_set_incr", "KEYS", 1, "x", "ARGS", 1, 1, "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "VALUES") == [2]
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "float_set_get", "KEYS", 1, "f", "ARGS", 1, "1.1", "OUTPUTS", 1, "y")
    assert float(rs.execute_command("AI.TENSORGET", "y", "VALUES")[0]) == pytest.approx(1.1)
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "int_list", "KEYS", 1, "l", "ARGS", 2, 1, 2, "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "META", "VALUES") == [b"dtype", b"INT64", b"shape", [2, 1], b"values", [1, 2]]
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "hash_values", "KEYS", 1, "h", "ARGS", 4, "field1", 1, "field2", 2,
                       "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "VALUES") == [1, 2]
    assert rs.hgetall("h") == {b"field1": b"1", b"field2": b"2"}
    # integers are not cut to 32 bits (RedisAI's bug)
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "big_int", "KEYS", 1, "b", "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "VALUES") == [4294967301]
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "missing_is_none", "KEYS", 1, "nothing", "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "VALUES") == [4]  # str(None) == "None"
    rs.execute_command("AI.SCRIPTEXECUTE", "rs", "empty_list", "KEYS", 1, "nolist", "OUTPUTS", 1, "y")
    assert rs.execute_command("AI.TENSORGET", "y", "VALUES") == [0]


@pytest.mark.parametrize(
    "command,text",
    [
        (["HGETALL", "h"], "[f, v, g, w]"),
        (["HGETALL", "nohash"], "[]"),
        (["HMGET", "h", "f", "nofield"], "[v, None]"),
        (["SCAN", "0", "MATCH", "h"], "[0, [h]]"),  # nested arrays are lists too
        (["GET", "s"], "text"),
        (["STRLEN", "s"], "4"),
    ],
)
def test_redis_execute_array_replies_are_lists_as_in_redisai(rs: redis.Redis, command: list[str], text: str) -> None:
    rs.hset("h", mapping={"f": "v", "g": "w"})
    rs.set("s", "text")
    rs.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", "reply_text", "KEYS", 1, "out", "INPUTS", 1, "t",
                              "ARGS", len(command), *command, "OUTPUTS", 1, "o") == b"OK"
    assert rs.get("out") == text.encode()


def test_compile_error_keeps_the_compilers_spacing(r: redis.Redis) -> None:
    # redisai-py's test_scriptstore compares this text exactly (RedisAI: one space per newline)
    assert err(r, "AI.SCRIPTSTORE", "test", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", "return 1") == (
        "expected def but found 'return' here:   File \"<string>\", line 1 return 1 ~~~~~~ <--- HERE ")


def test_redis_execute_error_keeps_earlier_writes(rs: redis.Redis) -> None:
    rs.set("s", "v")
    rs.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    assert err(rs, "AI.SCRIPTEXECUTE", "rs", "command_error", "KEYS", 2, "s", "w", "INPUTS", 1, "t") == (
        "Redis command returned an error: WRONGTYPE Operation against a key holding the wrong kind of value")
    assert rs.get("w") == b"written before the error"
    info = dict(zip(*[iter(rs.execute_command("AI.INFO", "rs"))] * 2))
    assert info[b"errors"] == 1


def test_model_execute_from_a_script(rs: redis.Redis) -> None:
    rs.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear())
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    rs.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
    assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", "run_model", "KEYS", 1, "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    _, _, _, shape, _, blob = rs.execute_command("AI.TENSORGET", "y", "META", "BLOB")
    np.testing.assert_allclose(np.frombuffer(blob, np.float32).reshape(shape), models.linear_expected(x), rtol=1e-6)
    info = dict(zip(*[iter(rs.execute_command("AI.INFO", "m"))] * 2))
    assert info[b"calls"] == 1  # counted like any other run of the model
    assert err(rs, "AI.SCRIPTEXECUTE", "rs", "run_model", "KEYS", 1, "nomodel", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == (
        "model key is empty")
    rs.execute_command("AI.MODELSTORE", "two", "ONNX", "CPU", "BLOB", models.onnx_two_in_two_out())
    assert err(rs, "AI.SCRIPTEXECUTE", "rs", "run_model", "KEYS", 1, "two", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == (
        "Expected 2 inputs but got 1")


def test_model_execute_tf_example(rs: redis.Redis) -> None:
    rs.execute_command("AI.MODELSTORE", "tf_mul{1}", "TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "mul",
                       "BLOB", models.tf_mul_2d())
    assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", "run_model_two", "KEYS", 1, "tf_mul{1}", "OUTPUTS", 1, "y{1}") == b"OK"
    assert rs.execute_command("AI.TENSORGET", "y{1}", "VALUES") == [b"4", b"9", b"4", b"9"]


def test_blocking_commands_are_refused_inside_scripts(rs: redis.Redis, server: ServerProcess) -> None:
    rs.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    msg = err(rs, "AI.SCRIPTEXECUTE", "rs", "model_via_execute", "KEYS", 1, "m", "INPUTS", 1, "t")
    assert msg == ("Redis command returned an error: ERR AI.MODELEXECUTE cannot be called from a script; "
                   "use redisAI.model_execute")
    assert server.alive()


def test_outputs_tuple_list_and_count(rs: redis.Redis) -> None:
    rs.execute_command("AI.TENSORSET", "t", "FLOAT", 2, "VALUES", 1, 2)
    for fn in ("two_outputs", "as_list_outputs"):
        assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", fn, "INPUTS", 1, "t", "OUTPUTS", 2, "a", "b") == b"OK"
        assert rs.execute_command("AI.TENSORGET", "a", "VALUES") == [b"2", b"3"]
        assert rs.execute_command("AI.TENSORGET", "b", "VALUES") == [b"2", b"4"]
    msg = err(rs, "AI.SCRIPTEXECUTE", "rs", "two_outputs", "INPUTS", 1, "t", "OUTPUTS", 1, "a")
    assert msg.startswith("Function returned unexpected number of outputs - two_outputs")


def test_runtime_errors(rs: redis.Redis) -> None:
    rs.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    assert err(rs, "AI.SCRIPTEXECUTE", "rs", "fails", "INPUTS", 1, "t", "OUTPUTS", 1, "y") == "list index out of range"
    assert err(rs, "AI.SCRIPTEXECUTE", "rs", "wrong_fn", "INPUTS", 1, "t", "OUTPUTS", 1, "y") == "Function does not exist: wrong_fn"
    rs.execute_command("AI.SCRIPTSET", "old", "CPU", "SOURCE", ADDTWO)
    assert err(rs, "AI.SCRIPTRUN", "old", "addtwo", "INPUTS", "t", "OUTPUTS", "y") == (
        "Wrong number of inputs provided to function: addtwo")
    rs.execute_command("AI.TENSORSET", "i", "INT32", 1, "VALUES", 1)
    rs.execute_command("AI.TENSORSET", "s", "STRING", 1, "VALUES", "x")
    assert err(rs, "AI.SCRIPTRUN", "old", "addtwo", "INPUTS", "s", "s", "OUTPUTS", "y") == (
        "STRING tensors cannot be given to a TorchScript script")


def test_timeout(rs: redis.Redis, server: ServerProcess) -> None:
    rs.execute_command("AI.TENSORSET", "big", "FLOAT", 300, 300)
    busy = server.raw()
    busy.send(encode("AI.SCRIPTEXECUTE", "rs", "slow", "INPUTS", 1, "big", "ARGS", 1, 5000, "OUTPUTS", 1, "o"))
    time.sleep(0.3)
    assert rs.execute_command("AI.SCRIPTEXECUTE", "rs", "slow", "INPUTS", 1, "big", "ARGS", 1, 1, "OUTPUTS", 1, "o2",
                              "TIMEOUT", 20) == b"TIMEDOUT"
    assert busy.read_reply() == "OK"


def test_compile_errors_store_nothing(r: redis.Redis) -> None:
    msg = err(r, "AI.SCRIPTSET", "bad", "CPU", "SOURCE", "def bad(a):\n    return a +\n")
    assert msg.startswith("expected ident but found 'newline' here")
    assert r.exists("bad") == 0
    assert err(r, "AI.SCRIPTSTORE", "bad", "CPU", "ENTRY_POINTS", 1, "nope", "SOURCE", ADDTWO) == (
        "Function nope does not exist in the given script.")
    assert err(r, "AI.SCRIPTSTORE", "bad", "CPU", "ENTRY_POINTS", 1, "addtwo", "SOURCE", ADDTWO) == (
        "Wrong number of inputs in function addtwo. Expected 3 but was 2")
    src = "def f(a: Tensor, b: List[str], c: List[str]):\n    return a\n"
    assert err(r, "AI.SCRIPTSTORE", "bad", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", src) == (
        "Wrong inputs type in function f. Expected signature similar to: def f(tensors: List[Tensor], keys: List[str], args: List[str])")
    assert r.exists("bad") == 0


def test_script_command_errors(r: redis.Redis, raw: RawConnection) -> None:
    assert err(r, "AI.SCRIPTSET", "k", "CPU", "TAG", "asdf") == "Insufficient arguments, missing script SOURCE"
    assert err(r, "AI.SCRIPTSET", "k", "CPU", "NOTSOURCE", "x") == "Insufficient arguments, missing script SOURCE"
    assert err(r, "AI.SCRIPTSTORE", "k", "CPU", "ENTRY_POINTS", 5, "bar", "bar_variadic", "SOURCE", "script") == (
        "Insufficient arguments, missing script entry points")
    assert err(r, "AI.SCRIPTSTORE", "k", "CPU", "ENTRY_POINTS", "x", "a", "SOURCE", "s") == (
        "Non numeric entry points number provided to AI.SCRIPTSTORE command")
    assert err(r, "AI.SCRIPTSTORE", "k", "CPU", "TAG", "t", "ENTRY_POINTS", 1, "a", "SRC") == (
        "Insufficient arguments, missing script SOURCE")
    assert err(r, "AI.SCRIPTSTORE", "k", "bad_device", "ENTRY_POINTS", 1, "a", "SOURCE", "s") == "Invalid DEVICE"
    assert err(r, "AI.SCRIPTGET", "nope") == "script key is empty"
    assert err(r, "AI.SCRIPTDEL", "nope") == "script key is empty"
    r.execute_command("AI.SCRIPTSET", "s", "CPU", "SOURCE", ADDTWO)
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "OUTPUTS", 2, "a", "a") == (
        "KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command")
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "KEYS", 1) == "Missing arguments after KEYS keyword"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "KEYS", "x", "k") == "Invalid or negative value found in number of KEYS"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "KEYS", 2, "k") == (
        "Number of pre declared KEYS to be used in the command does not match the number of given arguments")
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "KEYS", 1, "{1}", "ARGS") == "Invalid arguments provided to AI.SCRIPTEXECUTE"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", "OUTPUTS") == "Invalid argument for inputs count in AI.SCRIPTEXECUTE"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", 1, "a", "TIMEOUT", "TIMEOUT") == "Invalid value for TIMEOUT"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", 1, "a", "TIMEOUT") == (
        "No value provided for TIMEOUT in AI.SCRIPTEXECUTE")
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", 1, "a", "INPUTS_LIST", 1) == (
        "Invalid AI.SCRIPTEXECUTE command. Unexpected argument: INPUTS_LIST")
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", 1, "a", "INPUTS", 1, "b") == (
        "Already Encountered INPUTS scope in AI.SCRIPTEXECUTE command")
    assert err(r, "AI.SCRIPTRUN", "s", "addtwo", "INPUTS", "a", "$", "b", "$", "c") == (
        "Already encountered a variable size list of tensors")
    assert err(r, "AI.SCRIPTRUN", "s", "addtwo", "OUTPUTS", "a", "$") == (
        "Encountered a variable size list of tensors outside of input section")
    assert err(r, "AI.SCRIPTRUN", "s", "addtwo", "bogus") == "Unrecongnized parameter to SCRIPTRUN"
    assert err(r, "AI.SCRIPTRUN", "s") == "wrong number of arguments for 'AI.SCRIPTRUN' command"
    assert err(r, "AI.SCRIPTEXECUTE", "s") == "wrong number of arguments for 'AI.SCRIPTEXECUTE' command"
    assert err(r, "AI.SCRIPTEXECUTE", "s", "addtwo", "INPUTS", 1, "missing") == "tensor key is empty or in a different shard"
    assert r.execute_command("AI.SCRIPTDEL", "s") == b"OK"
    assert r.exists("s") == 0


def test_scripts_inside_multi(r: redis.Redis) -> None:
    r.execute_command("AI.SCRIPTSET", "s", "CPU", "SOURCE", ADDTWO)
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 1)
    p = r.pipeline(transaction=True)
    p.execute_command("AI.SCRIPTRUN", "s", "addtwo", "INPUTS", "a", "a", "OUTPUTS", "b")
    p.execute_command("AI.SCRIPTSET", "s2", "CPU", "SOURCE", ADDTWO)
    p.get("x")
    res = p.execute(raise_on_error=False)
    assert str(res[0]) == "Cannot run RedisAI command within a transaction or a LUA script"
    assert "cannot run inside MULTI" in str(res[1])
    assert res[2] is None


def test_requirepass_covers_scripts() -> None:
    with ServerProcess("--requirepass", "pw") as s:
        c = s.raw()
        assert c.command("AI.SCRIPTSET", "s", "CPU", "SOURCE", ADDTWO) == "NOAUTH Authentication required."
        assert c.command("AUTH", "pw") == "OK"
        assert c.command("AI.SCRIPTSET", "s", "CPU", "SOURCE", ADDTWO) == "OK"
