"""Durability end to end: every value type survives SAVE/BGSAVE/shutdown + restart and AOF replay +
restart (models run again with the same outputs); acknowledged writes survive SIGKILL; torn and
corrupt files are handled as documented; BGREWRITEAOF compacts while writes go on."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.support import models
from tests.support.server import ServerProcess, server_binary

pytestmark = pytest.mark.slow

ADDTWO = "def addtwo(a, b):\n    return a + b\n"
ENTRY = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 3\n"
# big enough to be read into its own buffer and moved into the tensor (the log must still hold it)
BIG = bytes(range(256)) * 1024
DTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
          "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "BOOL": np.bool_}


_started: list[ServerProcess] = []


@pytest.fixture(autouse=True)
def _stop_leftovers():
    """A failing test must not leave its servers running."""
    yield
    while _started:
        s = _started.pop()
        if s.alive():
            s.kill()


def start(tmp: Path, *args: str) -> ServerProcess:
    s = ServerProcess("--dir", str(tmp), *args, cwd=str(tmp))
    _started.append(s)
    return s.start(timeout=120)


def populate(r: redis.Redis) -> None:
    for name, dt in DTYPES.items():
        if name == "BOOL":
            a = (np.arange(6) % 2).astype(dt)
        elif name.startswith("UINT"):
            a = np.arange(250, 256).astype(dt)
        else:
            a = np.arange(-3, 3).astype(dt)
        r.execute_command("AI.TENSORSET", f"t:{name}", name, 2, 3, "BLOB", a.tobytes())
    r.execute_command("AI.TENSORSET", "t:STRING", "STRING", 2, "VALUES", "hello", "")
    r.execute_command("AI.TENSORSET", "t:scalar", "FLOAT", "VALUES", 7)
    r.execute_command("AI.TENSORSET", "t:big", "UINT8", len(BIG), "BLOB", BIG)
    r.set("s", b"bin\x00ary")
    r.hset("h", mapping={"f1": "1", "f2": b"\x00\xff"})
    r.rpush("l", "a", "b", "c")
    r.set("ttl", "v", ex=1000)
    r.execute_command("AI.MODELSTORE", "m:onnx", "ONNX", "CPU", "TAG", "v1", "BATCHSIZE", 8, "MINBATCHSIZE", 2,
                      "MINBATCHTIMEOUT", 50, "BLOB", models.onnx_linear())
    r.execute_command("AI.MODELSTORE", "m:torch", "TORCH", "CPU", "TAG", "v2", "BLOB", models.torch_linear())
    r.execute_command("AI.MODELSTORE", "m:tf", "TF", "CPU", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "BLOB", models.tf_linear())
    r.execute_command("AI.MODELSTORE", "m:tflite", "TFLITE", "CPU", "BLOB", models.tflite_linear())
    r.execute_command("AI.SCRIPTSET", "sc:old", "CPU", "TAG", "s1", "SOURCE", ADDTWO)
    r.execute_command("AI.SCRIPTSTORE", "sc:new", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", ENTRY)
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
    r.execute_command("AI.MODELEXECUTE", "m:onnx", "INPUTS", 1, "x", "OUTPUTS", 1, "y:onnx")


def verify(r: redis.Redis) -> None:
    for name, dt in DTYPES.items():
        got = r.execute_command("AI.TENSORGET", f"t:{name}", "META", "BLOB")
        assert got[1] == name.encode() and got[3] == [2, 3]
        assert len(got[5]) == 6 * np.dtype(dt).itemsize
    assert r.execute_command("AI.TENSORGET", "t:STRING", "VALUES") == [b"hello", b""]
    assert r.execute_command("AI.TENSORGET", "t:scalar", "META") == [b"dtype", b"FLOAT", b"shape", []]
    assert r.execute_command("AI.TENSORGET", "t:big", "BLOB") == BIG
    assert r.get("s") == b"bin\x00ary"
    assert r.hgetall("h") == {b"f1": b"1", b"f2": b"\x00\xff"}
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c"]
    assert 900 < r.ttl("ttl") <= 1000
    meta = r.execute_command("AI.MODELGET", "m:onnx", "META")
    assert meta[4:10] == [b"tag", b"v1", b"batchsize", 8, b"minbatchsize", 2] and meta[-1] == 50
    assert r.execute_command("AI.MODELGET", "m:tf", "META")[10:14] == [b"inputs", [b"x"], b"outputs", [b"y"]]
    assert r.execute_command("AI.SCRIPTGET", "sc:old") == [b"device", b"CPU", b"tag", b"s1", b"Entry Points", [],
                                                            b"source", ADDTWO.encode()]
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    expected = models.linear_expected(x)
    for m in ("m:onnx", "m:torch", "m:tf", "m:tflite"):
        assert r.execute_command("AI.MODELEXECUTE", m, "INPUTS", 1, "x", "OUTPUTS", 1, "out") == b"OK"
        blob = r.execute_command("AI.TENSORGET", "out", "BLOB")
        np.testing.assert_allclose(np.frombuffer(blob, np.float32).reshape(1, 3), expected, rtol=1e-6)
    np.testing.assert_allclose(np.frombuffer(r.execute_command("AI.TENSORGET", "y:onnx", "BLOB"), np.float32), expected.ravel(), rtol=1e-6)
    assert r.execute_command("AI.SCRIPTRUN", "sc:old", "addtwo", "INPUTS", "t:FLOAT", "t:FLOAT", "OUTPUTS", "o") == b"OK"
    assert r.execute_command("AI.SCRIPTEXECUTE", "sc:new", "f", "INPUTS", 1, "t:scalar", "OUTPUTS", 1, "o") == b"OK"
    assert r.execute_command("AI.TENSORGET", "o", "VALUES") == [b"21"]


def test_snapshot_round_trip_every_type(tmp_path: Path) -> None:
    s = start(tmp_path)
    r = redis.Redis(port=s.port, protocol=2)
    populate(r)
    assert r.save() is True
    last = r.lastsave()
    s.stop()
    s = start(tmp_path)
    r = redis.Redis(port=s.port, protocol=2)
    verify(r)
    assert r.lastsave() >= last
    s.stop()


def test_aof_replay_round_trip_every_type(tmp_path: Path) -> None:
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    populate(r)
    r.delete("gone")
    r.set("gone", 1)
    r.delete("gone")
    r.set("expired", "x", px=1)
    time.sleep(0.01)
    s.kill()  # no shutdown save: only the log
    assert not (tmp_path / "dump.snapshot").exists()
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    verify(r)
    assert r.exists("gone", "expired") == 0
    assert r.info("persistence")["aof_enabled"] == 1
    s.stop()


def test_bgsave_and_shutdown_save(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "3600 1")
    r = redis.Redis(port=s.port, protocol=2)
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 1, "VALUES", 1)
    assert r.bgsave() is True
    deadline = time.time() + 30
    while r.info("persistence")["rdb_bgsave_in_progress"] and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("persistence")["rdb_last_bgsave_status"] == "ok"
    r.execute_command("AI.TENSORSET", "b", "FLOAT", 1, "VALUES", 2)
    s.stop()  # SIGTERM: with save rules the data is saved at shutdown
    s = start(tmp_path)
    r = redis.Redis(port=s.port, protocol=2)
    assert sorted(r.keys("*")) == [b"a", b"b"]
    r.set("c", 1)
    r.shutdown(nosave=True)
    s.proc.wait(10)
    s = start(tmp_path)
    assert redis.Redis(port=s.port).exists("c") == 0  # SHUTDOWN NOSAVE wrote nothing
    s.stop()


def test_save_rules_trigger_a_background_save(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "1 1")
    r = redis.Redis(port=s.port, protocol=2)
    r.set("k", "v")
    wait_saved(r, 20)  # nobody asked for a save: the rule "1 1" started it
    assert (tmp_path / "dump.snapshot").exists()
    s.kill()
    s = start(tmp_path, "--save", "")
    assert redis.Redis(port=s.port).get("k") == b"v"
    s.stop()


def test_bgsave_and_config_set_appendonly_inside_multi_take_effect(tmp_path: Path) -> None:
    """Work a queued command starts in the background (BGSAVE, turning the AOF on) runs after EXEC."""
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    p = r.pipeline(transaction=True)
    p.set("k", "v")
    p.bgsave()
    p.config_set("appendonly", "yes")
    assert p.execute() == [True, True, True]
    wait_saved(r)
    assert (tmp_path / "dump.snapshot").exists()
    deadline = time.time() + 30
    while r.info("persistence")["aof_rewrite_in_progress"] and time.time() < deadline:
        time.sleep(0.05)
    r.set("after", "1")  # only in the log
    s.kill()
    s = start(tmp_path, "--save", "", "--appendonly", "yes")
    assert redis.Redis(port=s.port).mget("k", "after") == [b"v", b"1"]
    s.stop()


def test_bgrewriteaof_compacts_while_writes_continue(tmp_path: Path) -> None:
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    for i in range(2000):
        r.execute_command("AI.TENSORSET", "same", "INT32", 1, "VALUES", i)
    before = (tmp_path / "appendonly.aof").stat().st_size
    assert r.bgrewriteaof() is True
    for i in range(100):
        r.set(f"during:{i}", i)
    deadline = time.time() + 30
    while r.info("persistence")["aof_rewrite_in_progress"] and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("persistence")["aof_last_bgrewrite_status"] == "ok"
    r.set("after", 1)
    after = (tmp_path / "appendonly.aof").stat().st_size
    assert after < before / 10
    s.kill()
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    assert r.execute_command("AI.TENSORGET", "same", "VALUES") == [1999]
    assert all(r.get(f"during:{i}") == str(i).encode() for i in range(100))
    assert r.get("after") == b"1"
    s.stop()


def test_config_set_appendonly_writes_existing_data(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    r.execute_command("AI.TENSORSET", "before", "FLOAT", 1, "VALUES", 3)
    assert r.config_set("appendonly", "yes") is True
    r.set("after", "1")
    s.kill()
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    assert r.execute_command("AI.TENSORGET", "before", "VALUES") == [b"3"]
    assert r.get("after") == b"1"
    s.stop()


def assert_survived(r: redis.Redis, key: str, acked: int) -> None:
    """The acknowledged value, or the one write that followed it on that key: the server may have
    logged and applied a write whose reply the kill cut off (each writer has one command in flight)."""
    got = int(r.execute_command("AI.TENSORGET", key, "VALUES")[0])
    assert got in (acked, acked + 500), (key, acked, got)


def crash_rounds(tmp_path: Path, fsync: str, rounds: int, writers: int = 4) -> None:
    """Writers (threads, one connection each, so replies share group commits) store acknowledged
    TENSORSETs and MODELSTOREs while the server is SIGKILLed at a random moment, `rounds` times."""
    rng = random.Random(7)
    acked: dict[str, tuple[int, float, int]] = {}  # key -> (value, ack time, round)
    counters = [0] * writers
    blob = models.onnx_linear()
    kill_times: list[float] = []

    def check(r: redis.Redis) -> None:
        # everysec may lose what was acknowledged in the last second or two before its round's kill
        for key, (val, t, rnd) in acked.items():
            if fsync == "always" or t < kill_times[rnd] - 2.0:
                assert_survived(r, key, val)

    for rnd in range(rounds):
        s = start(tmp_path, "--appendonly", "yes", "--appendfsync", fsync, "--save", "")
        check(redis.Redis(port=s.port, protocol=2, socket_timeout=5))
        stop = threading.Event()

        def writer(w: int, port: int = s.port, rnd: int = rnd, stop: threading.Event = stop) -> None:
            c = redis.Redis(port=port, protocol=2, socket_timeout=5)
            while not stop.is_set():
                i = counters[w]
                key = f"w{w}:{i % 500}"
                try:
                    if i % 97 == 0:
                        c.execute_command("AI.MODELSTORE", f"model:{w}:{i % 3}", "ONNX", "CPU", "BLOB", blob)
                    c.execute_command("AI.TENSORSET", key, "INT64", 1, "VALUES", i)
                except (redis.ConnectionError, redis.TimeoutError):
                    return
                acked[key] = (i, time.time(), rnd)
                counters[w] = i + 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.0))
        os.kill(s.pid, signal.SIGKILL)
        kill_times.append(time.time())
        stop.set()
        for t in threads:
            t.join()
        s.proc.wait(10)
    s = start(tmp_path, "--appendonly", "yes", "--appendfsync", fsync, "--save", "")
    check(redis.Redis(port=s.port, protocol=2))
    assert len(acked) > 50
    s.stop()


def test_sigkill_loses_no_acknowledged_write_with_fsync_always(tmp_path: Path) -> None:
    crash_rounds(tmp_path, "always", rounds=4)


def test_sigkill_with_everysec_loses_at_most_the_last_seconds(tmp_path: Path) -> None:
    crash_rounds(tmp_path, "everysec", rounds=3)


def test_interrupted_snapshot_leaves_the_previous_one(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    r.set("old", "1")
    r.save()
    big = np.zeros(8 * 1024 * 1024, dtype=np.float32).tobytes()  # 32 MiB per tensor
    for k in range(8):
        r.execute_command("AI.TENSORSET", f"big:{k}", "FLOAT", len(big) // 4, "BLOB", big)
    r.bgsave()
    os.kill(s.pid, signal.SIGKILL)  # mid-write
    s.proc.wait(10)
    assert subprocess.run([server_binary(), "check-snapshot", str(tmp_path / "dump.snapshot")],
                          capture_output=True, check=False).returncode == 0
    s = start(tmp_path)
    r = redis.Redis(port=s.port, protocol=2)
    assert r.get("old") == b"1"
    s.stop()


def test_torn_aof_tail_is_truncated_with_a_log_line(tmp_path: Path) -> None:
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    redis.Redis(port=s.port).set("k", "v")
    s.kill()
    aof = tmp_path / "appendonly.aof"
    good = aof.stat().st_size
    with open(aof, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhal")
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    assert redis.Redis(port=s.port).get("k") == b"v"
    assert f"truncating the log at offset {good}" in s.log()
    assert aof.stat().st_size == good
    s.stop()


def test_corrupt_aof_stops_startup_naming_file_and_offset(tmp_path: Path) -> None:
    s = start(tmp_path, "--appendonly", "yes", "--save", "")
    r = redis.Redis(port=s.port)
    r.set("a", "1")
    r.set("b", "2")
    s.kill()
    aof = tmp_path / "appendonly.aof"
    data = bytearray(aof.read_bytes())
    second = data.index(b"*3", 1)
    data[second] = ord("#")  # flip the start of the second command
    aof.write_bytes(bytes(data))
    proc = subprocess.run([server_binary(), "--port", "auto", "--dir", str(tmp_path), "--appendonly", "yes"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "appendonly.aof" in proc.stderr and f"offset {second}" in proc.stderr
    out = subprocess.run([server_binary(), "check-aof", str(aof)], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and f"offset {second}" in out.stderr


def test_snapshot_with_wrong_version_or_flipped_byte(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port)
    r.set("a", "1" * 100)
    r.save()
    s.stop()
    snap = tmp_path / "dump.snapshot"
    data = bytearray(snap.read_bytes())
    flipped = bytearray(data)
    flipped[40] ^= 0xFF
    snap.write_bytes(bytes(flipped))
    out = subprocess.run([server_binary(), "check-snapshot", str(snap)], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and ("checksum mismatch" in out.stderr or "bad record" in out.stderr)
    versioned = bytearray(data)
    versioned[8:12] = struct.pack("<I", 99)
    snap.write_bytes(bytes(versioned))
    proc = subprocess.run([server_binary(), "--port", "auto", "--dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "dump.snapshot" in proc.stderr and "unsupported snapshot version 99" in proc.stderr


def test_check_aof_fix(tmp_path: Path) -> None:
    aof = tmp_path / "a.aof"
    aof.write_bytes(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk")
    out = subprocess.run([server_binary(), "check-aof", str(aof)], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "incomplete from offset 20" in out.stderr
    out = subprocess.run([server_binary(), "check-aof", "--fix", str(aof)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and aof.stat().st_size == 20
    out = subprocess.run([server_binary(), "check-aof", str(aof)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "1 commands" in out.stdout


def wait_saved(r: redis.Redis, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = r.info("persistence")
        if not info["rdb_bgsave_in_progress"] and info["rdb_changes_since_last_save"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"no finished save: {r.info('persistence')}")


def save_while_changing(r: redis.Redis, *then: tuple) -> list:
    """Sets a string, a hash and a list, then sends in one pipeline BGSAVE, a change to each of
    them (made while the save writes) and the commands in `then`; returns the replies."""
    r.set("s", "x" * 100_000)
    r.hset("h", "f", "1")
    r.rpush("l", "a")
    p = r.pipeline(transaction=False)
    p.bgsave()
    p.append("s", "tail")
    p.hset("h", "g", "2")
    p.rpush("l", "b")
    for cmd in then:
        p.execute_command(*cmd)
    return p.execute()


def test_bgsave_schedule_and_copy_on_write_values(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    big = np.ones(64 * 1024 * 1024, dtype=np.uint8).tobytes()
    r.execute_command("AI.TENSORSET", "big", "UINT8", len(big), "BLOB", big)  # makes the save take a while
    # the changes made while the first save writes stay out of it (copy-on-write)
    replies = save_while_changing(r, ("BGSAVE", "SCHEDULE"))
    assert replies[0] is True and replies[-1] is True  # redis-py maps "Background saving scheduled" to True
    wait_saved(r)  # the scheduled save ran after the first one and caught the later writes
    s.kill()
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    assert r.strlen("s") == 100_004 and r.hgetall("h") == {b"f": b"1", b"g": b"2"} and r.lrange("l", 0, -1) == [b"a", b"b"]
    s.stop()


def test_snapshot_taken_before_a_change_does_not_see_it(tmp_path: Path) -> None:
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    save_while_changing(r)
    deadline = time.time() + 60
    while r.info("persistence")["rdb_bgsave_in_progress"] and time.time() < deadline:
        time.sleep(0.05)
    assert r.info("persistence")["rdb_changes_since_last_save"] == 3
    assert r.strlen("s") == 100_004  # the live value has the change
    s.kill()
    s = start(tmp_path, "--save", "")
    r = redis.Redis(port=s.port, protocol=2)
    assert r.strlen("s") == 100_000 and r.hgetall("h") == {b"f": b"1"} and r.lrange("l", 0, -1) == [b"a"]
    s.stop()
