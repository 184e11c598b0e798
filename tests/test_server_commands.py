"""The Redis essentials clients need: connection, server, key and expiry commands, auth, shutdown."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import redis

from tests.support.server import RawConnection, ServerProcess


def err(r: redis.Redis, *cmd: object) -> str:
    with pytest.raises(redis.RedisError) as e:
        r.execute_command(*cmd)
    return str(e.value)


def test_ping_echo_select(r: redis.Redis, raw: RawConnection) -> None:
    assert raw.command("PING") == "PONG"
    assert raw.command("PING", "hello") == b"hello"
    assert r.echo("x y") == b"x y"
    assert raw.command("SELECT", 0) == "OK"
    assert err(r, "SELECT", 1) == "DB index is out of range"
    assert err(r, "SELECT", "x") == "value is not an integer or out of range"
    assert err(r, "PING", "a", "b") == "wrong number of arguments for 'ping' command"


def test_hello_reply(raw: RawConnection) -> None:
    h = raw.command("HELLO")
    d = dict(zip(h[::2], h[1::2]))
    assert d[b"server"] == b"redis" and d[b"proto"] == 2 and d[b"mode"] == b"standalone"
    assert d[b"modules"][0][:4] == [b"name", b"ai", b"ver", 10207]
    h = raw.command("HELLO", "2", "SETNAME", "myname")
    assert raw.command("CLIENT", "GETNAME") == b"myname"


def test_client_commands(r: redis.Redis) -> None:
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    assert r.client_getname() is None
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"
    assert err(r, "CLIENT", "SETNAME", "bad name") == "Client names cannot contain spaces, newlines or special characters."
    assert r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib") == b"OK"
    assert r.execute_command("CLIENT", "SETINFO", "LIB-VER", "1.2") == b"OK"
    assert err(r, "CLIENT", "SETINFO", "NOPE", "x") == "Unrecognized option 'NOPE'"
    me = next(c for c in r.client_list() if int(c["id"]) == cid)
    assert me["name"] == "worker-1" and me["lib-name"] == "mylib" and me["lib-ver"] == "1.2"
    assert me["cmd"] == "client|list"
    info = r.client_info()
    assert int(info["id"]) == cid
    assert err(r, "CLIENT", "BOGUS") == "unknown subcommand 'BOGUS'. Try CLIENT HELP."


def test_command_introspection(raw: RawConnection) -> None:
    n = raw.command("COMMAND", "COUNT")
    assert n > 50
    info = raw.command("COMMAND", "INFO", "get", "ai.tensorset", "nope")
    assert info[0][0] == b"get" and info[0][1] == 2 and info[0][3:6] == [1, 1, 1]
    assert info[1][0] == b"ai.tensorset" and info[1][1] == -4
    assert info[2] is None
    docs = raw.command("COMMAND", "DOCS", "ai.tensorget")
    assert docs[0] == b"ai.tensorget" and docs[1][:2] == [b"summary", b"Returns a tensor's metadata, blob or values."]
    assert raw.command("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    assert len(raw.command("COMMAND")) == n


def test_info_sections(r: redis.Redis) -> None:
    r.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    r.set("s", "v", ex=100)
    info = r.info()
    assert info["redis_mode"] == "standalone" and info["role"] == "master"
    assert info["connected_clients"] >= 1
    assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": 0}
    assert info["used_memory"] > 0
    assert set(r.info("clients")) >= {"connected_clients", "blocked_clients", "maxclients"}
    assert "total_commands_processed" in r.info("stats")
    assert r.info("server")["tcp_port"] > 0
    assert "used_memory_human" in r.info("memory")
    assert "rdb_changes_since_last_save" in r.info("persistence")
    assert r.info("nosuchsection") == {}


def test_key_commands_on_every_type(r: redis.Redis) -> None:
    r.execute_command("AI.TENSORSET", "tensor", "FLOAT", 1, "VALUES", 1)
    r.set("string", "v")
    r.hset("hash", "f", "v")
    r.rpush("list", "a")
    assert r.dbsize() == 4
    assert r.exists("tensor", "string", "nope", "tensor") == 3
    assert [r.type(k) for k in ("tensor", "string", "hash", "list", "nope")] == [
        b"AI_TENSOR", b"string", b"hash", b"list", b"none"]
    assert sorted(r.keys("*")) == [b"hash", b"list", b"string", b"tensor"]
    assert r.keys("t*") == [b"tensor"]
    assert r.rename("tensor", "tensor2") is True
    assert r.execute_command("AI.TENSORGET", "tensor2", "VALUES") == [b"1"]
    assert err(r, "RENAME", "nope", "x") == "no such key"
    assert r.renamenx("string", "hash") is False
    assert r.delete("tensor2", "nope") == 1
    assert r.unlink("string", "hash") == 2
    assert r.dbsize() == 1
    r.flushdb()
    assert r.dbsize() == 0
    r.set("a", 1)
    r.flushall()
    assert r.dbsize() == 0


def test_scan_with_match_count_type(r: redis.Redis) -> None:
    for i in range(50):
        r.execute_command("AI.TENSORSET", f"t:{i}", "INT8", 1, "VALUES", 1)
        r.set(f"s:{i}", i)
    seen = set()
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, count=7)
        seen.update(keys)
        if cursor == 0:
            break
    assert len(seen) == 100
    tensors = set(r.scan_iter(_type="AI_TENSOR"))
    assert tensors == {f"t:{i}".encode() for i in range(50)}
    assert set(r.scan_iter(match="s:1*")) == {b"s:1"} | {f"s:{i}".encode() for i in range(10, 20)}
    assert err(r, "SCAN", "abc") == "invalid cursor"
    assert err(r, "SCAN", "0", "COUNT", "0") == "syntax error"


def test_expiry_applies_to_tensors(r: redis.Redis) -> None:
    r.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)
    assert r.ttl("t") == -1
    assert r.ttl("nope") == -2
    assert r.pexpire("t", 150) is True
    assert 0 < r.pttl("t") <= 150
    assert r.ttl("t") in (0, 1)
    time.sleep(0.3)
    assert r.exists("t") == 0
    with pytest.raises(redis.ResponseError, match="tensor key is empty"):
        r.execute_command("AI.TENSORGET", "t")
    r.execute_command("AI.TENSORSET", "t2", "FLOAT", 1, "VALUES", 1)
    assert r.expire("t2", 100) is True
    assert 99 <= r.ttl("t2") <= 100
    assert r.persist("t2") is True
    assert r.persist("t2") is False
    assert r.ttl("t2") == -1
    assert r.expire("nope", 10) is False
    assert r.expire("t2", -1) is True  # a past time deletes
    assert r.exists("t2") == 0
    r.set("x", 1)
    assert r.expire("x", 100, nx=True) is True
    assert r.expire("x", 200, nx=True) is False
    assert r.expire("x", 50, gt=True) is False
    assert r.expire("x", 500, gt=True) is True
    assert r.execute_command("EXPIRETIME", "x") > time.time()


def test_active_expiry_removes_untouched_keys(r: redis.Redis) -> None:
    for i in range(20):
        r.set(f"e{i}", 1, px=50)
    time.sleep(0.5)
    assert r.info("keyspace") == {}
    assert r.info("stats")["expired_keys"] >= 20


def test_config_get_set(r: redis.Redis) -> None:
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_set("maxmemory", "100mb") is True
    assert r.config_get("maxmemory") == {"maxmemory": "104857600"}
    r.config_set("maxmemory", "0")
    got = r.config_get("max*")
    assert {"maxmemory", "maxclients", "max-tensor-bytes"} <= set(got)
    assert r.config_get("THREADS_PER_QUEUE") == {"threads_per_queue": "1"}
    assert err(r, "CONFIG", "SET", "nope", "1") == "Unknown option or number of arguments for CONFIG SET - 'nope'"
    assert err(r, "CONFIG", "SET", "port", "1") == (
        "CONFIG SET failed (possibly related to argument 'port') - can't set immutable config")
    assert "argument couldn't be parsed into an integer" in err(r, "CONFIG", "SET", "maxclients", "x")
    assert r.config_get("port")["port"] != "0"


def test_busy_polling_follows_busy_poll_us_and_stops_when_idle() -> None:
    """After serving a client the event loop polls for `busy-poll-us` instead of sleeping; it must
    go back to sleep when clients go quiet, and 0 turns polling off. Counted in loop passes
    (INFO stats `busy_poll_passes`), not CPU time, so a loaded machine cannot change the answer."""

    def passes() -> int:
        return int(r.info("stats")["busy_poll_passes"])

    with ServerProcess() as s:
        r = redis.Redis(port=s.port)
        assert r.config_get("busy-poll-us") == {"busy-poll-us": "200"}
        for _ in range(500):
            r.ping()
        assert passes() > 0  # the loop polled between the PINGs
        time.sleep(0.2)
        idle = passes()
        time.sleep(1.0)
        # asleep: only the 200 µs window after that INFO itself (a pass is a few µs; a loop that
        # kept polling would count tens of thousands of passes in the second)
        assert passes() - idle < 1000
        r.config_set("busy-poll-us", "1000000")
        r.ping()
        first = passes()
        time.sleep(0.3)
        assert passes() - first > 1000  # a 1 s window: still polling 0.3 s after that one command
        r.config_set("busy-poll-us", "0")
        time.sleep(1.1)
        off = passes()
        for _ in range(100):
            r.ping()
        assert passes() == off
        assert "argument must be between 0 and 1000000" in err(r, "CONFIG", "SET", "busy-poll-us", "-1")


def test_maxmemory_refuses_writes_with_oom(r: redis.Redis) -> None:
    r.config_set("maxmemory", "1")
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.execute_command("AI.TENSORSET", "oom", "FLOAT", 1, "VALUES", 1)
        assert r.get("oom") is None  # reads still work
    finally:
        r.config_set("maxmemory", "0")
    assert r.execute_command("AI.TENSORSET", "oom", "FLOAT", 1, "VALUES", 1) == b"OK"


def test_quit_and_reset(server: ServerProcess) -> None:
    c = server.raw()
    c.command("CLIENT", "SETNAME", "n")
    assert c.command("RESET") == "RESET"
    assert c.command("CLIENT", "GETNAME") is None
    assert c.command("QUIT") == "OK"
    assert c.is_closed()


def test_requirepass() -> None:
    with ServerProcess("--requirepass", "s3cret") as s:
        c = s.raw()
        assert c.command("PING") == "NOAUTH Authentication required."
        assert c.command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1) == "NOAUTH Authentication required."
        assert c.command("AUTH", "wrong") == "WRONGPASS invalid username-password pair or user is disabled."
        assert c.command("AUTH", "s3cret") == "OK"
        assert c.command("PING") == "PONG"
        c2 = s.raw()
        h = c2.command("HELLO", "3", "AUTH", "default", "s3cret")
        assert dict(h["map"])[b"proto"] == 3
        r = redis.Redis(port=s.port, password="s3cret")
        assert r.ping()
        # unauthenticated clients cannot send huge requests
        c3 = s.raw()
        c3.send(b"*2\r\n$4\r\nECHO\r\n$100000\r\n")
        assert c3.read_reply() == "ERR Protocol error: unauthenticated bulk length"


def test_auth_without_password_configured(r: redis.Redis) -> None:
    assert "without any password configured" in err(r, "AUTH", "x")


def test_shutdown_nosave_stops_the_process() -> None:
    s = ServerProcess().start()
    c = s.raw()
    c.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
    assert c.is_closed()
    assert s.proc is not None
    assert s.proc.wait(10) == 0
    assert "User requested shutdown" in s.log()


def test_sigterm_and_sigint_shut_down_cleanly() -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        s = ServerProcess().start()
        assert s.proc is not None
        os.kill(s.pid, sig)
        assert s.proc.wait(10) == 0
        assert "ready to exit" in s.log()


def test_redis_cli_info_and_ping(server: ServerProcess) -> None:
    out = subprocess.run(["redis-cli", "-p", str(server.port), "PING"], capture_output=True, text=True, timeout=10, check=False)
    assert out.stdout.strip() == "PONG"
