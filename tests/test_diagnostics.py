"""Redis's own diagnostics: SLOWLOG, INFO commandstats/latencystats/errorstats, LATENCY, CLIENT
KILL/PAUSE/UNPAUSE/NO-EVICT, MONITOR, DEBUG SLEEP and `log-format json`, with Redis 7.0's replies."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.server import Err, RawConnection, ServerProcess


@pytest.fixture(scope="module")
def diag():
    with ServerProcess("--enable-debug-command", "local") as s:
        yield s


@pytest.fixture
def c(diag: ServerProcess):
    conn = diag.raw()
    conn.command("FLUSHALL")
    conn.command("CONFIG", "RESETSTAT")
    conn.command("SLOWLOG", "RESET")
    conn.command("LATENCY", "RESET")
    yield conn
    conn.command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    conn.command("CONFIG", "SET", "latency-monitor-threshold", "0")
    conn.close()


def info(conn: RawConnection, section: str) -> dict[str, str]:
    text = conn.command("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def test_slowlog(c: RawConnection) -> None:
    assert c.command("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK"
    c.command("CLIENT", "SETNAME", "slowpoke")
    c.command("SET", "k", "x" * 200)
    c.command("GET", "k")
    entries = c.command("SLOWLOG", "GET", "2")
    assert len(entries) == 2
    newest, older = entries
    assert newest[3] == [b"GET", b"k"]
    assert older[3] == [b"SET", b"k", b"x" * 128 + b"... (72 more bytes)"]
    assert newest[0] == older[0] + 1 and isinstance(newest[1], int) and isinstance(newest[2], int)
    assert re.fullmatch(rb"127\.0\.0\.1:\d+", newest[4]) and newest[5] == b"slowpoke"
    assert c.command("SLOWLOG", "LEN") >= 3
    assert c.command("SLOWLOG", "RESET") == "OK"
    assert c.command("SLOWLOG", "LEN") == 1, "as in Redis, the RESET itself is the first new entry"
    assert c.command("CONFIG", "SET", "slowlog-log-slower-than", "-1") == "OK"
    assert c.command("SLOWLOG", "RESET") == "OK"
    c.command("GET", "k")
    assert c.command("SLOWLOG", "LEN") == 0
    assert c.command("SLOWLOG", "GET", "-2") == Err("ERR count should be greater than or equal to -1")
    assert c.command("SLOWLOG", "NOPE") == Err("ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP.")


def test_commandstats_errorstats_latencystats(c: RawConnection) -> None:
    for _ in range(3):
        c.command("SET", "k", "v")
    c.command("HSET", "h", "f", "v")
    assert c.command("GET", "h") == Err("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert c.command("INCR", "k") == Err("ERR value is not an integer or out of range")
    stats = info(c, "commandstats")
    assert re.fullmatch(r"calls=3,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=0", stats["cmdstat_set"])
    assert re.fullmatch(r"calls=1,usec=\d+,usec_per_call=[\d.]+,rejected_calls=0,failed_calls=1", stats["cmdstat_get"])
    assert info(c, "errorstats") == {"errorstat_ERR": "count=1", "errorstat_WRONGTYPE": "count=1"}
    c.command("CONFIG", "GET", "maxclients")
    assert "cmdstat_config|get" in info(c, "commandstats")
    lat = info(c, "latencystats")
    assert re.fullmatch(r"p50=[\d.]+,p99=[\d.]+,p99\.9=[\d.]+", lat["latency_percentiles_usec_set"])
    assert "cmdstat_set" in info(c, "everything") and "cmdstat_set" not in info(c, "default")
    assert c.command("CONFIG", "RESETSTAT") == "OK"
    assert "cmdstat_set" not in info(c, "commandstats")


def test_latency_monitor_and_debug_sleep(c: RawConnection) -> None:
    assert c.command("LATENCY", "LATEST") == []
    assert c.command("CONFIG", "SET", "latency-monitor-threshold", "1") == "OK"
    assert c.command("DEBUG", "SLEEP", "0.02") == "OK"
    latest = c.command("LATENCY", "LATEST")
    assert len(latest) == 1
    name, when, last, worst = latest[0]
    assert name == b"command" and last >= 20 and worst == last and isinstance(when, int)
    history = c.command("LATENCY", "HISTORY", "command")
    assert len(history) == 1 and history[0][1] == last
    assert c.command("LATENCY", "HISTORY", "nosuch") == []
    assert c.command("LATENCY", "RESET") == 1
    assert c.command("LATENCY", "LATEST") == []
    assert c.command("DEBUG", "NOPE") == Err(
        "ERR unknown subcommand or wrong number of arguments for 'NOPE'. Try DEBUG HELP.")


def test_debug_is_refused_unless_enabled() -> None:
    with ServerProcess() as s:
        c = s.raw()
        assert c.command("DEBUG", "SLEEP", "0") == Err(
            'ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it '
            "from a local connection, otherwise you need to set this option in the configuration file, and then "
            "restart the server.")
        c.close()


def test_client_kill(diag: ServerProcess, c: RawConnection) -> None:
    victims = [diag.raw() for _ in range(3)]
    ids = [v.command("CLIENT", "ID") for v in victims]
    assert c.command("CLIENT", "KILL", "ID", ids[0]) == 1
    assert victims[0].is_closed()
    addr = victims[1].command("CLIENT", "INFO").split(b" addr=")[1].split(b" ")[0]
    assert c.command("CLIENT", "KILL", addr) == "OK"
    assert victims[1].is_closed()
    assert c.command("CLIENT", "KILL", addr) == Err("ERR No such client")
    c.command("ACL", "SETUSER", "victim", "on", ">pw", "~*", "+@all")
    assert victims[2].command("AUTH", "victim", "pw") == "OK"
    assert c.command("CLIENT", "KILL", "USER", "victim") == 1
    assert victims[2].is_closed()
    assert c.command("CLIENT", "KILL", "USER", "nobody") == Err("ERR No such user 'nobody'")
    assert c.command("CLIENT", "KILL", "ID", 999999) == 0
    assert c.command("CLIENT", "KILL", "FOO", "bar") == Err("ERR syntax error")
    assert c.command("CLIENT", "KILL", "ID", c.command("CLIENT", "ID")) == 0, "SKIPME yes by default"
    assert c.command("PING") == "PONG"
    c.command("ACL", "DELUSER", "victim")


def wait_for_cmd(c: RawConnection, client_id: int, cmd: bytes) -> None:
    """Until CLIENT LIST shows `cmd` as the last command of client `client_id` (bounded by count)."""
    for _ in range(10_000):
        line = next(x for x in c.command("CLIENT", "LIST").split(b"\n") if x.startswith(b"id=%d " % client_id))
        if b" cmd=" + cmd + b" " in line:
            return
    raise AssertionError(f"client {client_id} never ran {cmd!r}")


def test_client_pause_and_unpause(diag: ServerProcess, c: RawConnection) -> None:
    c.command("SET", "k", "old")
    writer = diag.raw()
    wid = writer.command("CLIENT", "ID")
    assert c.command("CLIENT", "PAUSE", "100000", "WRITE") == "OK"
    writer.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nnew\r\n")
    wait_for_cmd(c, wid, b"set")
    assert c.command("GET", "k") == b"old", "reads go on during CLIENT PAUSE WRITE, the write waits"
    assert c.command("CLIENT", "UNPAUSE") == "OK"
    assert writer.read_reply() == "OK"
    assert c.command("GET", "k") == b"new"
    assert c.command("CLIENT", "PAUSE", "x") == Err("ERR timeout is not an integer or out of range")
    assert c.command("CLIENT", "PAUSE", "10", "FOO") == Err("ERR CLIENT PAUSE mode must be WRITE or ALL")
    writer.close()


def test_client_no_evict(c: RawConnection) -> None:
    assert c.command("CLIENT", "NO-EVICT", "on") == "OK"
    assert b" flags=e " in c.command("CLIENT", "INFO")
    assert c.command("CLIENT", "NO-EVICT", "off") == "OK"
    assert b" flags=N " in c.command("CLIENT", "INFO")
    assert c.command("CLIENT", "NO-EVICT", "maybe") == Err("ERR syntax error")


def test_monitor(diag: ServerProcess, c: RawConnection) -> None:
    mon = diag.raw()
    assert mon.command("MONITOR") == "OK"
    c.command("SET", "key with space", "v\n1")
    c.command("AUTH", "secret")
    line = mon._line().decode()
    assert re.fullmatch(r'\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "key with space" "v\\n1"', line), line
    line = mon._line().decode()
    assert line.endswith('"AUTH" "(redacted)"'), line
    mon.close()


def test_log_format_json() -> None:
    with ServerProcess("--log-format", "json") as s:
        s.raw().command("PING")
    lines = [ln for ln in s.log().splitlines() if ln.strip()]
    entries = [json.loads(ln) for ln in lines]
    assert any("ready to accept connections" in e["message"] for e in entries)
    assert all(set(e) >= {"time", "pid", "level", "message"} for e in entries)


def test_pause_all_ends_by_itself(diag: ServerProcess, c: RawConnection) -> None:
    """Under PAUSE ALL every command waits (CLIENT UNPAUSE too, as in Redis); when the pause runs
    out, the held commands run in order."""
    c.command("SET", "k", "v")
    reader = diag.raw()
    assert c.command("CLIENT", "PAUSE", "200", "ALL") == "OK"
    reader.send(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n")
    assert reader.read_reply() == b"v"
    assert reader.read_reply() == "PONG"
    reader.close()
