"""redisai_fast.open(): the core in the test process. Calls go through the server's command path
(same replies and errors as a network client, same AOF), tensorget reads the stored buffer,
modelexecute waits with the GIL released while the server's workers run the model, and network
clients of a listening database share its keys."""

from __future__ import annotations

import faulthandler
import gc
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis
import redisai_fast
from redis._parsers.base import BaseParser
from redis.backoff import NoBackoff
from redis.retry import Retry
from redisai_fast import _core, errors
from redisai_fast._endpoint import free_port

from tests.support import gated_backend, models
from tests.support.server import ServerProcess

ADD = "def add(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] + tensors[1]\n"


@pytest.fixture
def db():
    d = redisai_fast.open()
    yield d
    d.close()


@pytest.fixture
def shared():
    """A database that also listens on a free port, and a redis-py client of it."""
    d = redisai_fast.open(port=0)
    c = d.client(protocol=2)
    yield d, c
    c.close()
    d.close()


def address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def test_keys_and_replies(db: redisai_fast.Database) -> None:
    assert db.set("s", "v") is True
    assert db.set("s", "w", nx=True) is None
    assert db.get("s") == b"v"
    assert db.get("missing") is None
    assert db.exists("s", "missing", "s") == 2
    assert db.execute_command("HSET", "h", "f", 1, "g", 2.5) == 2
    assert db.execute_command("HGETALL", "h") == [b"f", b"1", b"g", b"2.5"]
    assert db.execute_command("PING") == "PONG"
    assert sorted(db.keys()) == [b"h", b"s"]
    assert db.keys("s*") == [b"s"]
    assert db.delete("s", "h", "missing") == 2
    assert db.execute_command("DBSIZE") == 0
    # the caller is a client of the server like any connection
    assert b"addr=in-process:0" in db.execute_command("CLIENT", "LIST")
    with pytest.raises(TypeError, match="Invalid input of type: 'NoneType'"):
        db.execute_command("SET", "k", None)
    # arguments: numpy scalars are numbers, buffers are their bytes
    db.execute_command("SET", "n", np.int64(7))
    db.execute_command("SET", "f", np.float32(0.5))
    db.execute_command("SET", "b", memoryview(np.array([1, 2], dtype=np.int16)))
    assert [db.get(k) for k in ("n", "f", "b")] == [b"7", b"0.5", b"\x01\x00\x02\x00"]


def test_tensors_round_trip_every_type(db: redisai_fast.Database) -> None:
    for dtype, name in [(np.float32, "FLOAT"), (np.float64, "DOUBLE"), (np.int8, "INT8"), (np.int16, "INT16"),
                        (np.int32, "INT32"), (np.int64, "INT64"), (np.uint8, "UINT8"), (np.uint16, "UINT16"),
                        (np.bool_, "BOOL")]:
        a = (np.arange(6) % 2 if dtype is np.bool_ else np.arange(6) - (dtype not in (np.uint8, np.uint16))).astype(dtype)
        a = a.reshape(2, 3)
        assert db.tensorset(f"t:{name}", a) == "OK"
        got = db.tensorget(f"t:{name}")
        assert got.dtype == dtype and got.shape == (2, 3)
        np.testing.assert_array_equal(got, a)
        assert db.tensorget(f"t:{name}", meta_only=True) == {"dtype": name, "shape": [2, 3]}
    assert db.tensorset("scalar", np.float32(1.5)) == "OK"
    assert db.tensorget("scalar").shape == ()
    assert db.tensorset("list", [1, 2, 3, 4], shape=(2, 2), dtype="int32") == "OK"
    np.testing.assert_array_equal(db.tensorget("list"), [[1, 2], [3, 4]])
    assert db.tensorget("t:FLOAT", as_numpy=False) == {"dtype": "FLOAT", "shape": [2, 3],
                                                      "values": [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]}
    assert db.tensorset("str", np.array(["hello", ""])) == "OK"
    np.testing.assert_array_equal(db.tensorget("str"), np.array(["hello", ""]))
    assert db.tensorget("str", as_numpy=False) == {"dtype": "STRING", "shape": [2], "values": ["hello", ""]}
    # what the command itself stored, read back as a network client would
    assert db.execute_command("AI.TENSORGET", "t:INT16", "META", "VALUES") == [
        b"dtype", b"INT16", b"shape", [2, 3], b"values", [-1, 0, 1, 2, 3, 4]]
    # non-contiguous and big-endian arrays are stored as the values they hold
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    db.tensorset("strided", a[:, ::2])
    np.testing.assert_array_equal(db.tensorget("strided"), a[:, ::2])
    db.tensorset("big-endian", a.astype(">f4"))
    np.testing.assert_array_equal(db.tensorget("big-endian"), a)
    with pytest.raises(TypeError, match="dtype float16 are not supported"):
        db.tensorset("half", a.astype(np.float16))


def test_tensorget_reads_the_stored_buffer(db: redisai_fast.Database) -> None:
    for n in (1024, 4 << 20):  # 4 KiB and 16 MiB of FLOAT
        a = np.random.default_rng(1).random(n, dtype=np.float32)
        db.tensorset("t", a)
        first, second = db.tensorget("t"), db.tensorget("t")
        assert address(first) == address(second)  # both over the one stored buffer
        # the stored data's alignment: small tensors keep it in their own allocation (8 bytes),
        # large ones in a buffer of their own (64)
        assert address(first) % (64 if a.nbytes >= 32 << 10 else 8) == 0
        assert not first.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            first[0] = 1
        mutable = db.tensorget("t", as_numpy_mutable=True)
        assert address(mutable) != address(first) and mutable.flags.writeable
        # the array keeps the stored buffer alive after the key is overwritten or deleted
        db.tensorset("t", np.zeros(3, np.float32))
        db.delete("t")
        gc.collect()
        np.testing.assert_array_equal(first, a)
        np.testing.assert_array_equal(second, a)


def test_tensorset_copies_once_into_the_stored_buffer(db: redisai_fast.Database) -> None:
    a = np.arange(1 << 16, dtype=np.float32)
    db.tensorset("t", a)
    stored = db.tensorget("t")
    assert address(stored) != address(a)
    a[0] = 42  # the caller's array is its own: the stored tensor does not change
    assert stored[0] == 0
    assert db.tensorget("t")[0] == 0


def test_network_clients_share_the_keys(shared: tuple[redisai_fast.Database, redis.Redis]) -> None:
    db, r = shared
    assert db.port and db.url == f"redis://127.0.0.1:{db.port}"
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    db.tensorset("from-db", a)
    assert r.execute_command("AI.TENSORGET", "from-db", "META", "BLOB") == [
        b"dtype", b"FLOAT", b"shape", [2, 3], b"blob", a.tobytes()]
    r.execute_command("AI.TENSORSET", "from-net", "INT64", 3, "VALUES", 7, 8, 9)
    np.testing.assert_array_equal(db.tensorget("from-net"), np.array([7, 8, 9], dtype=np.int64))
    r.set("plain", "x")
    assert db.get("plain") == b"x"
    assert r.dbsize() == db.execute_command("DBSIZE") == 3


def test_models_scripts_and_dags(db: redisai_fast.Database) -> None:
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    assert db.modelstore("m", "ONNX", "CPU", models.onnx_linear(), tag="v1", batch=8) == "OK"
    assert db.tensorset("x", x) == "OK"
    assert db.modelexecute("m", "x", "y") == "OK"
    np.testing.assert_allclose(db.tensorget("y"), models.linear_expected(x), rtol=1e-6)
    meta = db.modelget("m", meta_only=True)
    assert (meta["backend"], meta["device"], meta["tag"], meta["batchsize"]) == ("ONNX", "CPU", "v1", 8)
    assert "blob" not in meta and db.modelget("m")["blob"] == models.onnx_linear()
    assert db.modelscan() == [["m", "v1"]]
    assert db.infoget("m")["calls"] == 1
    assert db.inforeset("m") == "OK"

    assert db.scriptstore("s", "CPU", ADD, "add", tag="t1") == "OK"
    assert db.scriptexecute("s", "add", inputs=["x", "x"], outputs="sum") == "OK"
    np.testing.assert_array_equal(db.tensorget("sum"), x * 2)
    assert db.scriptget("s", meta_only=True) == {"device": "CPU", "tag": "t1", "entry points": ["add"]}
    assert db.scriptscan() == [["s", "t1"]]

    results = (db.dag(load="x", persist="dy")
               .tensorset("two", np.full((1, 4), 2, np.float32))
               .scriptexecute("s", "add", inputs=["x", "two"], outputs="x2")
               .modelexecute("m", "x2", "dy")
               .tensorget("dy")
               .execute())
    assert results[:3] == ["OK", "OK", "OK"]
    np.testing.assert_allclose(results[3], models.linear_expected(x + 2), rtol=1e-6)
    np.testing.assert_allclose(db.tensorget("dy"), models.linear_expected(x + 2), rtol=1e-6)
    assert db.modeldel("m") == "OK" and db.scriptdel("s") == "OK"


def test_modelexecute_waits_without_the_gil_while_a_worker_runs_it(db: redisai_fast.Database) -> None:
    gated_backend.reset()
    assert db.loadbackend("TFLITE", "tests.support.gated_backend") == "OK"
    db.modelstore("m", "TFLITE", "CPU", b"not a model")
    db.tensorset("x", np.array([1, 2], dtype=np.float32))
    # the worker's run waits for a third thread, which can only run if the caller gave up the GIL
    opener = threading.Thread(target=lambda: gated_backend.ENTERED.wait(60) and gated_backend.GATE.set())
    opener.start()
    faulthandler.dump_traceback_later(120, exit=True)  # a caller holding the GIL would hang here
    try:
        assert db.modelexecute("m", "x", "y") == "OK"
    finally:
        faulthandler.cancel_dump_traceback_later()
        gated_backend.GATE.set()
        opener.join()
    assert gated_backend.RAN_ON == ["worker-CPU-0"]
    np.testing.assert_array_equal(db.tensorget("y"), [2, 4])


def test_durability_with_appendonly(tmp_path: Path) -> None:
    big = np.arange(1 << 16, dtype=np.float32)  # 256 KiB: handed over in a buffer of its own
    with redisai_fast.open(dir=tmp_path, appendonly="yes", save="") as db:
        db.tensorset("small", np.array([1, 2, 3], dtype=np.int16))
        db.tensorset("big", big)
        db.set("s", "v", ex=1000)
        db.modelstore("m", "ONNX", "CPU", models.onnx_linear())
    aof = (tmp_path / "appendonly.aof").read_bytes()
    assert b"AI.TENSORSET" in aof and big.tobytes() in aof
    assert not (tmp_path / "dump.snapshot").exists()
    with redisai_fast.open(dir=tmp_path, appendonly="yes", save="") as db:
        np.testing.assert_array_equal(db.tensorget("small"), [1, 2, 3])
        np.testing.assert_array_equal(db.tensorget("big"), big)
        assert 900 < db.execute_command("TTL", "s") <= 1000
        db.tensorset("x", np.ones((1, 4), np.float32))
        assert db.modelexecute("m", "x", "y") == "OK"
    # the server process replays the same log
    with ServerProcess("--dir", str(tmp_path), "--appendonly", "yes", "--save", "") as s:
        r = redis.Redis(port=s.port, protocol=2)
        assert r.execute_command("AI.TENSORGET", "big", "BLOB") == big.tobytes()
        assert r.execute_command("AI.TENSORGET", "y", "META") == [b"dtype", b"FLOAT", b"shape", [1, 3]]


def test_in_memory_by_default_and_snapshot_with_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with redisai_fast.open() as db:
        db.set("k", "v")
        assert db.execute_command("CONFIG", "GET", "save") == [b"save", b""]
    assert list(tmp_path.iterdir()) == []  # nothing written next to the caller
    data = tmp_path / "data"
    data.mkdir()
    with redisai_fast.open(dir=data) as db:  # the server's save rules: a snapshot at close
        db.set("k", "v")
    assert (data / "dump.snapshot").exists()
    with redisai_fast.open(dir=data) as db:
        assert db.get("k") == b"v"


def redis_py_error(line: str) -> Exception:
    return BaseParser.parse_error(line)


@pytest.mark.parametrize("line", [
    "ERR unknown command 'x', with args beginning with: ",
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "NOAUTH Authentication required.",
    "WRONGPASS invalid username-password pair or user is disabled.",
    "EXECABORT Transaction discarded because of previous errors.",
    "LOADING Redis is loading the dataset in memory",
    "NOSCRIPT No matching script.",
    "READONLY You can't write against a read only replica.",
    "NOPERM this user has no permissions to run the 'get' command",
    "NOPROTO unsupported protocol version",
    "ERR max number of clients reached",
    "Number of keys given as INPUTS here does not match model definition",
])
def test_error_classes_and_messages_match_redis_py(line: str) -> None:
    ours, theirs = errors.error_from_reply(line), redis_py_error(line)
    assert isinstance(ours, type(theirs))
    assert isinstance(ours, errors.RedisAIFastError)
    assert str(ours) == str(theirs)
    assert ours.code == (line.split()[0] if line.split()[0].isupper() else "")


def test_every_error_reply_raises_with_the_servers_message(tmp_path: Path) -> None:
    with redisai_fast.open(port=0, requirepass="pw", maxclients=2) as db:
        # no retries: redis-py retries connection errors with backoff
        r = db.client(protocol=2, retry=Retry(NoBackoff(), 0))
        db.tensorset("t", np.zeros(2, np.float32))
        db.modelstore("m", "ONNX", "CPU", models.onnx_linear())
        cases = [
            (("AI.TENSORGET", "nothing"), errors.ResponseError, "tensor key is empty or in a different shard"),
            (("LPUSH", "t", "x"), errors.WrongTypeError, "WRONGTYPE Operation against a key holding the wrong kind of value"),
            (("AI.MODELEXECUTE", "m", "INPUTS", 2, "t", "t", "OUTPUTS", 1, "y"), errors.ResponseError,
             "Number of keys given as INPUTS here does not match model definition"),
            (("AUTH", "wrong"), errors.AuthenticationError, "invalid username-password pair or user is disabled."),
            (("AI.MODELSTORE", "bad", "ONNX", "CPU", "BLOB", b"garbage"), errors.ResponseError, None),
        ]
        for args, cls, message in cases:
            with pytest.raises(cls) as ours:
                db.execute_command(*args)
            with pytest.raises(redis.exceptions.ResponseError if cls is not errors.AuthenticationError
                               else redis.exceptions.AuthenticationError) as theirs:
                r.execute_command(*args)
            assert str(ours.value) == str(theirs.value)
            if message is not None:
                assert str(ours.value) == message
        db.execute_command("CONFIG", "SET", "maxmemory", 1)
        with pytest.raises(errors.OutOfMemoryError, match=r"^command not allowed when used memory > 'maxmemory'\.$"):
            db.tensorset("t2", np.zeros(2, np.float32))
        db.execute_command("CONFIG", "SET", "maxmemory", 0)
        # what needs a connection of its own is refused, with the reason
        for cmd in ("MULTI", "WATCH", "HELLO", "SHUTDOWN"):
            with pytest.raises(errors.ResponseError, match=f"^{cmd} is not available in-process: "):
                db.execute_command(cmd, *(["k"] if cmd == "WATCH" else []))
        # maxclients counts the in-process client (1) and the network one (2)
        other = db.client(protocol=2, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.exceptions.ConnectionError, match="max number of clients reached"):
            other.ping()
        r.close()
        other.close()
    with pytest.raises(errors.ConnectionError, match="^the database is closed$"):
        db.get("t")


def test_shutdown_from_a_network_client_closes_the_database() -> None:
    db = redisai_fast.open(port=0)
    r = db.client(retry=Retry(NoBackoff(), 0))
    r.shutdown(nosave=True)  # redis-py returns once the server closed the connection
    deadline = time.monotonic() + 60
    while not db.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.closed
    with pytest.raises(errors.ConnectionError):
        db.tensorget("x")
    db.close()


def test_bad_options_and_taken_ports_raise_the_servers_message() -> None:
    with pytest.raises(errors.ServerStartError, match="^'nosuchoption': Bad directive or wrong number of arguments$"):
        redisai_fast.open(nosuchoption=1)
    with redisai_fast.open(port=0) as db, pytest.raises(errors.ServerStartError, match="address already in use"):
        redisai_fast.open(port=db.port)


def test_unixsocket(tmp_path: Path) -> None:
    path = tmp_path / "db.sock"
    with redisai_fast.open(unixsocket=path) as db:  # no TCP listener
        assert db.url == f"unix://{path}" and db.port is None
        db.set("k", "v")
        assert db.client().get("k") == b"v"
        assert db.execute_command("CONFIG", "GET", "port") == [b"port", b"0"]
    assert not path.exists()


def eventually(check, wait: float = 30.0) -> bool:
    """Polls `check()` until it is true or `wait` s have passed (background work, not a timing bound)."""
    deadline = time.monotonic() + wait
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_background_work_runs_without_any_connection(tmp_path: Path) -> None:
    # the expiry cycle deletes keys nobody reads, and the save rules' cron writes the snapshot
    with redisai_fast.open(dir=tmp_path, save="1 1") as db:
        db.set("short", "v", px=20)
        db.set("kept", "v")
        assert eventually(lambda: db.execute_command("INFO", "stats").count(b"expired_keys:1") == 1)
        assert db.keys() == [b"kept"]
        assert eventually((tmp_path / "dump.snapshot").exists)
        # the file is renamed into place just before the save's bookkeeping ends, so wait for that too
        assert eventually(
            lambda: db.execute_command("INFO", "persistence").count(b"rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0") == 1
        )


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed (make test installs it)")
def test_store_mode_through_open(tmp_path: Path) -> None:
    """With `store`, the keys live in a Redis store; AI commands wait for their keys and run
    (the in-process client resumes them as a connection does)."""
    port = free_port()
    store = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, protocol=2, retry=Retry(NoBackoff(), 0))
        assert eventually(lambda: r.ping() if socket_open(port) else False)
        with redisai_fast.open(store=f"redis://127.0.0.1:{port}") as db:
            x = np.array([[1, 2, 3, 4]], dtype=np.float32)
            assert db.tensorset("x", x) == "OK"
            assert db.modelstore("m", "ONNX", "CPU", models.onnx_linear()) == "OK"
            assert db.modelexecute("m", "x", "y") == "OK"
            np.testing.assert_allclose(db.tensorget("y"), models.linear_expected(x), rtol=1e-6)
            db.set("plain", "v")
        assert sorted(r.keys()) == [b"m", b"plain", b"x", b"y"]
        assert r.get("plain") == b"v"
        r.close()
    finally:
        store.terminate()
        store.wait(30)


def socket_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


BUMP = ("def bump(tensors: List[Tensor], keys: List[str], args: List[str]):\n"
        "    redis.execute(\"INCR\", keys[0])\n"
        "    return tensors[0]\n")


def test_two_databases_in_one_process_keep_their_own_keys() -> None:
    with redisai_fast.open() as one, redisai_fast.open() as two:
        for db in (one, two):  # `two` compiles last
            db.scriptstore("s", "CPU", BUMP, "bump")
            db.tensorset("x", np.zeros(1, np.float32))
        assert one.scriptexecute("s", "bump", keys="n", inputs="x", outputs="y") == "OK"
        assert one.get("n") == b"1" and two.get("n") is None  # the script's INCR ran on its own server
        one.set("only-in-one", 1)
        assert two.exists("only-in-one") == 0


def test_close_releases_the_data() -> None:
    before = _core.allocated_bytes()
    db = redisai_fast.open(port=0)
    db.tensorset("big", np.zeros(16 << 20, np.float32))  # 64 MiB
    db.client().ping()
    assert _core.allocated_bytes() - before > 60 << 20
    db.close()
    gc.collect()  # the server's Python side (event loop, executor) holds reference cycles
    assert _core.allocated_bytes() - before < 8 << 20
