"""Differential tests: the same command sequences against a real redis-server and redisai-fast, whose
raw replies (types, values, exact error strings) must be identical. Covers strings, hashes, lists,
generic key commands, expiry, MULTI/EXEC/DISCARD (what is queued, what runs at once, what is refused) and WATCH."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from tests.support.server import RawConnection, ServerProcess

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (make test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reference():
    """A real redis-server, persistence off, stopped by PID."""
    port, d = free_port(), tempfile.mkdtemp(prefix="parity-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def run(port: int, script: str) -> list[object]:
    c = RawConnection(port)
    try:
        c.command("FLUSHALL")
        return [c.command(*shlex.split(line)) for line in script.strip().splitlines() if line.strip()]
    finally:
        c.close()


SCENARIOS = {
    "set-options": """
        SET k v
        SET k w NX
        SET k w XX
        GET k
        SET k2 v XX
        SET k3 v NX GET
        SET k x GET
        SET k y EX 100
        TTL k
        SET k z KEEPTTL
        TTL k
        SET k z PX 100000 KEEPTTL
        SET k z EX 0
        SET k z EX -5
        SET k z EX abc
        SET k z NX XX
        SET k z EX 10 PX 10
        SET k
        GET
        GET nokey
    """,
    "string-commands": """
        SETNX a 1
        SETNX a 2
        GETSET a 3
        GETSET nokey 1
        GETDEL a
        GETDEL a
        SETEX b 100 v
        TTL b
        SETEX b 0 v
        PSETEX c 100000 v
        GETEX c PERSIST
        TTL c
        GETEX c EX 50
        TTL c
        GETEX nokey EX 5
        GETEX c EX 5 PX 5
        MSET x 1 y 2 z 3
        MGET x y nokey z
        MSET x
        MSETNX x 9 w 9
        MSETNX v 9 w 9
        MGET v w
        APPEND s hello
        APPEND s " world"
        STRLEN s
        STRLEN nokey
        GETRANGE s 0 4
        GETRANGE s -5 -1
        GETRANGE s 5 2
        GETRANGE s 0 100
        GETRANGE nokey 0 1
        SETRANGE s 6 WORLD
        GET s
        SETRANGE pad 3 x
        GET pad
        SETRANGE s -1 x
        SETRANGE s 2 ""
    """,
    "counters": """
        INCR n
        INCRBY n 10
        DECR n
        DECRBY n 5
        INCRBY n -3
        INCR s1
        SET s1 abc
        INCR s1
        SET big 9223372036854775807
        INCR big
        SET small -9223372036854775808
        DECR small
        INCRBY n 1.5
        INCRBYFLOAT f 1.5
        INCRBYFLOAT f 0.1
        INCRBYFLOAT f -1.6
        SET f2 3.0e3
        INCRBYFLOAT f2 1
        INCRBYFLOAT f2 abc
        SET sp " 1"
        INCR sp
        INCRBYFLOAT sp 1
    """,
    "hashes": """
        HSET h a 1 b 2
        HSET h a 3 c 4
        HGET h a
        HGET h nofield
        HGET nokey a
        HMGET h a b nofield
        HGETALL h
        HGETALL nokey
        HKEYS h
        HVALS h
        HLEN h
        HEXISTS h a
        HEXISTS h z
        HSTRLEN h a
        HSETNX h a 9
        HSETNX h d 9
        HDEL h a nofield
        HDEL h a
        HINCRBY h n 5
        HINCRBY h n -2
        HINCRBY h b abc
        HSET h s abc
        HINCRBY h s 1
        HINCRBYFLOAT h fl 2.5
        HINCRBYFLOAT h fl 0.25
        HMSET h x 1 y 2
        HSET h a
        HSET h
        HDEL h b c d n s fl x y
        EXISTS h
    """,
    "lists": """
        RPUSH l a b c
        LPUSH l z y
        LRANGE l 0 -1
        LRANGE l -2 100
        LRANGE l 3 1
        LLEN l
        LLEN nokey
        LINDEX l 0
        LINDEX l -1
        LINDEX l 99
        LSET l 0 Y
        LSET l 99 x
        LSET nokey 0 x
        LPUSHX nokey a
        RPUSHX l d
        LPOP l
        RPOP l
        LPOP l 2
        RPOP l 0
        LPOP nokey
        LPOP nokey 2
        RPUSH r a b a c a
        LREM r 2 a
        LRANGE r 0 -1
        RPUSH r a a
        LREM r -1 a
        LREM r 0 a
        LRANGE r 0 -1
        RPUSH p a b c a b c
        LPOS p b
        LPOS p b RANK 2
        LPOS p b RANK -1
        LPOS p b COUNT 0
        LPOS p x
        LPOS p b RANK 0
        LPOS p b MAXLEN 2
        LTRIM p 1 3
        LRANGE p 0 -1
        LTRIM p 5 10
        EXISTS p
        RPOP r 5
        EXISTS r
    """,
    "wrongtype": """
        SET s v
        HSET h f v
        RPUSH l a
        LPUSH s a
        HGET s f
        GET h
        APPEND l x
        HSET l f v
        LRANGE h 0 1
        INCR h
        STRLEN l
        MGET s h l
    """,
    "keys": """
        MSET a 1 b 2
        RPUSH l x
        EXISTS a b a nokey
        TYPE a
        TYPE l
        TYPE nokey
        RENAME a c
        RENAME nokey d
        RENAMENX c b
        RENAMENX c d
        COPY d e
        COPY d e
        COPY d e REPLACE
        COPY l l2
        RPUSH l2 y
        LRANGE l 0 -1
        LRANGE l2 0 -1
        COPY d f DB 0
        DEL b d e nokey
        UNLINK l
        DBSIZE
        KEYS l?
        KEYS [ef]*
        TOUCH l2 nokey
        EXPIRE l2 100
        TTL l2
        PERSIST l2
        PERSIST l2
        TTL l2
        TTL nokey
        PTTL nokey
        EXPIRE l2 100 NX
        EXPIRE l2 200 NX
        EXPIRE l2 50 GT
        EXPIRE l2 300 GT
        TTL l2
        EXPIRE l2 abc
        EXPIRE nokey 10
        EXPIRE l2 0
        EXISTS l2
        SET t v
        EXPIREAT t 1
        EXISTS t
    """,
    "errors": """
        FOO
        FOO a b
        GET a b
        DEL
        HSET h
        PING
        PING hi
        PING a b
        ECHO
        ECHO hi
        EXPIRE k 10 NX XX
        EXPIRE k 10 BOGUS
        SCAN 0 COUNT 0
        SCAN abc
        LRANGE l a b
        LPOP l -1
        GETRANGE s a 1
        HINCRBY h f 9223372036854775807
        HINCRBY h f 1
        CLIENT NOPE
        CONFIG NOPE
        OBJECT NOPE
    """,
    "multi-exec": """
        MULTI
        SET a 1
        INCR a
        LPUSH a x
        GET a
        EXEC
        MULTI
        SET b 1
        NOSUCHCOMMAND
        SET c 1
        EXEC
        EXISTS b c
        MULTI
        SET b 1
        GET
        EXEC
        MULTI
        MULTI
        DISCARD
        DISCARD
        EXEC
        MULTI
        WATCH a
        DISCARD
        MULTI
        EXEC
    """,
    "cluster-disabled": """
        CLUSTER INFO
        CLUSTER NODES
        CLUSTER SLOTS
        CLUSTER KEYSLOT foo
        CLUSTER INFO extra
        CLUSTER NOSUCH
        CLUSTER
        READONLY
        READWRITE
        ASKING
        READONLY x
    """,
    "multi-admin": """
        MULTI
        CLIENT SETNAME tx
        CLIENT GETNAME
        CONFIG SET maxmemory 0
        CONFIG GET maxmemory
        UNWATCH
        EXEC
        CLIENT GETNAME
        MULTI
        SET x 1
        SHUTDOWN
        EXEC
        EXISTS x
        MULTI
        SET y 1
        QUIT
    """,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_replies_as_redis(name: str, server: ServerProcess, reference: int) -> None:
    if name == "cluster-disabled" and os.environ.get("REDISAI_FAST_TEST_STORE"):
        pytest.skip("store mode answers CLUSTER as a Cluster node does (the map of the nodes in front of the store)")
    ours, theirs = run(server.port, SCENARIOS[name]), run(reference, SCENARIOS[name])
    lines = [ln.strip() for ln in SCENARIOS[name].strip().splitlines() if ln.strip()]
    for line, a, b in zip(lines, ours, theirs):
        assert a == b, f"{line}: redisai-fast {a!r} vs redis-server {b!r}"
    assert len(ours) == len(theirs)


def watch_script(port: int) -> list[object]:
    """WATCH seen from two connections: a change by another client aborts EXEC (nil)."""
    a, b = RawConnection(port), RawConnection(port)
    try:
        a.command("FLUSHALL")
        out = [a.command("SET", "w", "1"), a.command("WATCH", "w"), b.command("SET", "w", "2"),
               a.command("MULTI"), a.command("SET", "w", "3"), a.command("EXEC"), a.command("GET", "w"),
               a.command("WATCH", "w"), a.command("MULTI"), a.command("INCR", "w"), a.command("EXEC"),
               a.command("WATCH", "w"), b.command("EXPIRE", "w", "100"), a.command("MULTI"), a.command("EXEC"),
               a.command("WATCH", "gone"), b.command("SET", "gone", "x"), b.command("DEL", "gone"),
               a.command("MULTI"), a.command("EXEC"),
               a.command("WATCH", "w"), a.command("UNWATCH"), b.command("SET", "w", "9"), a.command("MULTI"),
               a.command("EXEC"), a.command("WATCH", "w"), b.command("FLUSHALL"), a.command("MULTI"),
               a.command("EXEC")]
        return out
    finally:
        a.close()
        b.close()


def test_watch_same_as_redis(server: ServerProcess, reference: int) -> None:
    assert watch_script(server.port) == watch_script(reference)
