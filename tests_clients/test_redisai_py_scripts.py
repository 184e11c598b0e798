"""redisai-py 1.3.0 script API against redisai-fast: scriptset/scriptstore/scriptrun/
scriptexecute/scriptget/scriptdel/scriptscan."""

from __future__ import annotations

import numpy as np
import pytest

OLD = "def addtwo(a, b):\n    return a + b\n\ndef addn(a, args : List[Tensor]):\n    return a + torch.stack(args).sum()\n"
NEW = '''
def bar(tensors: List[Tensor], keys: List[str], args: List[str]):
    a = tensors[0]
    b = tensors[1]
    return a + b

def set_get(tensors: List[Tensor], keys: List[str], args: List[str]):
    redis.execute("SET", keys[0], args[0])
    return torch.tensor(int(str(redis.execute("GET", keys[0]))))
'''


def test_scriptset_scriptrun_scriptget(con) -> None:
    assert con.scriptset("s", "cpu", OLD, tag="v1") == "OK"
    con.tensorset("a", np.array([40], dtype=np.float32))
    con.tensorset("b", np.array([2], dtype=np.float32))
    assert con.scriptrun("s", "addtwo", inputs=["a", "b"], outputs=["c"]) == "OK"
    assert con.tensorget("c").tolist() == [42.0]
    got = con.scriptget("s")
    assert got["device"] == "cpu" and got["tag"] == "v1" and got["source"] == OLD
    assert con.scriptscan() == [["s", "v1"]]
    assert con.scriptdel("s") == "OK"


def test_scriptstore_scriptexecute(con) -> None:
    assert con.scriptstore("n", "CPU", NEW, entry_points=["bar", "set_get"]) == "OK"
    con.tensorset("a", np.array([1, 2], dtype=np.float32))
    con.tensorset("b", np.array([3, 4], dtype=np.float32))
    assert con.scriptexecute("n", "bar", inputs=["a", "b"], outputs=["c"]) == "OK"
    assert con.tensorget("c").tolist() == [4.0, 6.0]
    assert con.scriptexecute("n", "set_get", keys=["k"], args=["7"], outputs=["o"], timeout=10000) == "OK"
    assert con.tensorget("o").tolist() == 7
    assert con.get("k") == b"7"
    info = con.infoget("n")
    assert info["calls"] == 2 and info["samples"] == -1 and info["type"] == "SCRIPT"


def test_script_errors(con) -> None:
    import redis

    with pytest.raises(redis.ResponseError, match="script key is empty"):
        con.scriptget("nope")
    with pytest.raises(redis.ResponseError, match="Function nope does not exist"):
        con.scriptstore("bad", "CPU", NEW, entry_points=["nope"])
