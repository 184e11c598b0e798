"""Memory per key stays lean and flat under churn (loose bounds; benches/memory.py has the numbers
side by side with redis-server)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import redis

from tests.support.server import ServerProcess, encode

TENSOR = struct.pack("4f", 1.0, 2.0, 3.0, 4.0)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def pipelined(port: int, commands: list[bytes], replies_per_command: int = 1) -> None:
    """Sends the commands at once and reads one single-line reply each (errors fail the test)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(commands))
        want, got, tail = len(commands) * replies_per_command, 0, b"\r\n"
        while got < want:
            chunk = s.recv(1 << 20)
            assert chunk, "connection closed"
            joined = tail + chunk
            assert b"\r\n-" not in joined, joined[:200]
            got += joined.count(b"\r\n") - tail.count(b"\r\n")
            tail = joined[-2:]


def key(i: int) -> bytes:
    return b"k%011d" % i


def used(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def test_small_keys_cost_little() -> None:
    n = 50_000
    with ServerProcess("--save", "") as s:
        r = redis.Redis(port=s.port)
        before = used(r)
        for start in range(0, n, 5000):
            pipelined(s.port, [encode("SET", key(i), b"s" * 16) for i in range(start, start + 5000)])
        per_string = (used(r) - before) / n
        r.flushall()
        before = used(r)
        for start in range(0, n, 5000):
            pipelined(s.port, [encode("AI.TENSORSET", key(i), "FLOAT", 4, "BLOB", TENSOR) for i in range(start, start + 5000)])
        per_tensor = (used(r) - before) / n
        assert r.execute_command("AI.TENSORGET", key(7), "BLOB") == TENSOR
    # allocated bytes per key, name and data included (before the lean keyspace: ~390 and ~420)
    assert per_string < 140, per_string
    assert per_tensor < 160, per_tensor


def test_a_million_set_del_cycles_stay_flat_in_rss() -> None:
    with ServerProcess("--save", "") as s:
        batch = 5000
        marks = []
        for done in range(0, 1_000_000, batch):
            cmds = [c for i in range(done, done + batch) for c in (encode("SET", key(i), b"s" * 16), encode("DEL", key(i)))]
            pipelined(s.port, cmds)
            if done + batch in (100_000, 1_000_000):
                marks.append(rss(s.pid))
        # tensors too, a tenth as many
        for done in range(0, 100_000, batch):
            cmds = [c for i in range(done, done + batch)
                    for c in (encode("AI.TENSORSET", key(i), "FLOAT", 4, "BLOB", TENSOR), encode("DEL", key(i)))]
            pipelined(s.port, cmds)
        marks.append(rss(s.pid))
        r = redis.Redis(port=s.port)
        assert r.dbsize() == 0
    # a leak of even one small allocation per cycle would add tens of MiB
    assert marks[1] - marks[0] < 4 * 2**20, marks
    assert marks[2] - marks[0] < 4 * 2**20, marks
