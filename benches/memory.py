"""Memory per key, side by side with redis-server: RSS growth over N small keys (12-byte names,
16-byte strings on both servers, 16-byte tensors on ours), what each key costs beyond its name
and data, and RSS after 10^6 SET/DEL cycles of fresh keys. Prints markdown tables.

`python benches/memory.py [--keys 200000] [--cycles 1000000] [--repeat 1]`
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

from common import RedisServer, ServerProcess, machine

KEY_LEN = 12
DATA_LEN = 16
BATCH = 5000


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Pipe:
    """Pipelined raw RESP over one socket; every reply expected is one line (+OK, :1, -ERR)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run(self, commands: list[bytes]) -> None:
        self.sock.sendall(b"".join(commands))
        want, got, tail = len(commands), 0, b"\r\n"  # the stream starts at a line start
        while got < want:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            joined = tail + chunk
            if b"\r\n-" in joined:
                raise RuntimeError(f"error reply: {joined[:200]!r}")
            got += joined.count(b"\r\n") - tail.count(b"\r\n")
            tail = joined[-2:]

    def command(self, *args: bytes) -> bytes:
        self.sock.sendall(resp(*args))
        return self.sock.recv(1 << 20)

    def close(self) -> None:
        self.sock.close()


def key(i: int) -> bytes:
    return b"k%011d" % i  # 12 bytes


STRING = b"s" * DATA_LEN
TENSOR = struct.pack("4f", 1.0, 2.0, 3.0, 4.0)  # FLOAT [4]: 16 bytes


def set_string(i: int) -> bytes:
    return resp(b"SET", key(i), STRING)


def set_tensor(i: int) -> bytes:
    return resp(b"AI.TENSORSET", key(i), b"FLOAT", b"4", b"BLOB", TENSOR)


def load(port: int, pid: int, n: int, make: Callable[[int], bytes]) -> float:
    """Bytes of RSS per key beyond the key's name and data, over `n` keys."""
    p = Pipe(port)
    p.command(b"PING")
    time.sleep(0.2)
    before = rss_bytes(pid)
    for start in range(0, n, BATCH):
        p.run([make(i) for i in range(start, min(n, start + BATCH))])
    time.sleep(0.2)
    after = rss_bytes(pid)
    p.close()
    return (after - before) / n - KEY_LEN - DATA_LEN


def churn(port: int, pid: int, cycles: int) -> tuple[int, int]:
    """RSS (bytes) after the first 10% and after all of `cycles` SET+DEL of fresh keys."""
    p = Pipe(port)
    first = cycles // 10
    done = 0
    marks = []
    for stop in (first, cycles):
        while done < stop:
            m = min(BATCH, stop - done)
            p.run([c for i in range(done, done + m) for c in (set_string(i), resp(b"DEL", key(i)))])
            done += m
        time.sleep(0.2)
        marks.append(rss_bytes(pid))
    p.close()
    return marks[0], marks[1]


def ours(*extra: str) -> ServerProcess:
    return ServerProcess("--save", "", "--appendonly", "no", *extra).start()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--cycles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="50k keys, 10^5 cycles")
    a = ap.parse_args()
    if a.quick:
        a.keys, a.cycles = 50_000, 100_000
    info = machine()
    print("# memory per key: RSS growth over", a.keys, "keys (12-byte names, 16-byte values)")
    print(", ".join(f"{k}: {v}" for k, v in info.items()))
    rows: dict[str, list[float]] = {
        "redis-server string": [], "redisai-fast string": [], "redisai-fast tensor": [],
        "redisai-fast string, disable-thp yes": [], "redisai-fast tensor, disable-thp yes": [],
    }
    churns: dict[str, list[tuple[int, int]]] = {"redis-server": [], "redisai-fast": []}
    for _ in range(a.repeat):
        r = RedisServer()
        try:
            rows["redis-server string"].append(load(r.port, r.proc.pid, a.keys, set_string))
        finally:
            r.stop()
        for name in list(rows)[1:]:
            make = set_tensor if "tensor" in name else set_string
            s = ours("--disable-thp", "yes") if "thp" in name else ours()
            try:
                rows[name].append(load(s.port, s.pid, a.keys, make))
            finally:
                s.stop()
        if a.cycles:
            r = RedisServer()
            try:
                churns["redis-server"].append(churn(r.port, r.proc.pid, a.cycles))
            finally:
                r.stop()
            s = ours()
            try:
                churns["redisai-fast"].append(churn(s.port, s.pid, a.cycles))
            finally:
                s.stop()
    base = statistics.median(rows["redis-server string"])
    print()
    print("| server | value | bytes per key beyond name and data (median) | runs | vs redis-server string |")
    print("|---|---|---:|---|---:|")
    for name, vals in rows.items():
        server, kind = name.split(" ", 1)
        med = statistics.median(vals)
        runs = " ".join(f"{v:.1f}" for v in vals)
        print(f"| {server} | {DATA_LEN}-byte {kind} | {med:.1f} | {runs} | {med - base:+.1f} |")
    if a.cycles:
        print()
        print(f"{a.cycles:,} SET+DEL cycles of fresh keys (RSS after the first 10% -> after all):")
        print()
        print("| server | RSS after 10% MiB | RSS after all MiB | growth KiB |")
        print("|---|---:|---:|---:|")
        for server, vals in churns.items():
            for mid, end in vals:
                print(f"| {server} | {mid / 2**20:.1f} | {end / 2**20:.1f} | {(end - mid) / 1024:+.0f} |")


if __name__ == "__main__":
    main()
