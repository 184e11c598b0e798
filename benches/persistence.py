"""Persistence benchmark, side by side with redis-server under the same settings:
1. 4 KiB AI.TENSORSET vs SET throughput with appendonly off / everysec / always (redis-benchmark);
2. BGSAVE of a 2 GiB keyspace (128 x 16 MiB values) while a separate process PINGs in a loop:
   the worst and p99.9 PING latency during the save, against the same loop with no save running.
Prints markdown tables."""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing as mp
import shutil
import socket
import subprocess
import tempfile
import time

import redis
from common import LOADGEN, RedisServer, ServerProcess, build_loadgen, interleaved, machine

FSYNC = ("off", "everysec", "always")
BIG = 16 * 1024 * 1024


def persistence_args(mode: str) -> list[str]:
    if mode == "off":
        return ["--appendonly", "no", "--save", ""]
    return ["--appendonly", "yes", "--appendfsync", mode, "--save", ""]


def tensorset_rate(port: int, ai: bool, clients: int, n: int) -> float:
    payload = "x" * 4096
    cmd = ["AI.TENSORSET", "key:__rand_int__", "UINT8", "4096", "BLOB", payload] if ai else \
          ["SET", "key:__rand_int__", payload]
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "-r", "10000",
                          "--csv", *cmd], capture_output=True, text=True, check=True, timeout=900)
    return float(list(csv.reader(io.StringIO(out.stdout)))[1][1])


def ping_loop(port: int, seconds: float, q: mp.Queue) -> None:
    """One connection, PING after PING for `seconds`; sends back every latency in microseconds."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    end = time.perf_counter() + seconds
    while (t0 := time.perf_counter()) < end:
        s.sendall(b"PING\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            got += s.recv(64)
        lat.append((time.perf_counter() - t0) * 1e6)
    s.close()
    q.put(lat)


def pings_during(port: int, action, seconds: float) -> tuple[float, float, int]:
    """Runs `action()` while a PING loop runs in another process: (worst µs, p99.9 µs, pings)."""
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=ping_loop, args=(port, seconds, q))
    p.start()
    time.sleep(0.2)
    action()
    lat = sorted(q.get())
    p.join()
    return lat[-1], lat[int(len(lat) * 0.999)], len(lat)


def wait_bgsave(r: redis.Redis, before: int) -> float:
    t0 = time.perf_counter()
    while r.lastsave().timestamp() <= before or r.info("persistence")["rdb_bgsave_in_progress"]:
        time.sleep(0.01)
    return time.perf_counter() - t0


def bgsave_case(port: int, ai: bool, seconds: float) -> dict[str, float]:
    r = redis.Redis(port=port, protocol=2)
    # --preload writes every key: tensors for the tensorget op, strings for get
    subprocess.run([str(LOADGEN), "--port", str(port), "--op", "tensorget" if ai else "get", "--size", str(BIG),
                    "--clients", "1", "--pipeline", "1", "--requests", "0", "--keyspace", "128", "--preload"],
                   check=True, capture_output=True, timeout=900)
    assert r.dbsize() == 128
    idle = pings_during(port, lambda: time.sleep(seconds - 0.4), seconds)
    took = {}

    def save() -> None:
        before = int(r.lastsave().timestamp())
        time.sleep(max(0.0, before + 1.05 - time.time()))  # LASTSAVE has 1 s resolution
        t0 = time.perf_counter()
        assert r.bgsave()
        wait_bgsave(r, before)
        took["s"] = time.perf_counter() - t0

    during = pings_during(port, save, seconds)
    return {"idle_max": idle[0], "idle_p999": idle[1], "max": during[0], "p999": during[1],
            "pings": during[2], "save_s": took["s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter ping windows")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per throughput case (median)")
    args = ap.parse_args()
    build_loadgen()
    n = 20_000 if args.quick else 100_000
    rows = []
    for mode in FSYNC:
        for clients in (1, 50):
            d1, d2 = tempfile.mkdtemp(prefix="bench-aof-"), tempfile.mkdtemp(prefix="bench-aof-")
            fast = ServerProcess("--dir", d1, *persistence_args(mode), cwd=d1).start(timeout=120)
            ref = RedisServer("--dir", d2, *persistence_args(mode))
            try:
                ours, theirs = interleaved(lambda p=fast.port, c=clients: tensorset_rate(p, True, c, n),
                                           lambda p=ref.port, c=clients: tensorset_rate(p, False, c, n), args.repeat)
            finally:
                fast.stop()
                ref.stop()
                shutil.rmtree(d1, ignore_errors=True)
                shutil.rmtree(d2, ignore_errors=True)
            rows.append((mode, clients, ours, theirs))
            print(f"aof={mode:<8} c={clients:<3} ours={ours:>9,.0f}/s redis={theirs:>9,.0f}/s "
                  f"ratio={ours / theirs:.2f}", flush=True)
    seconds = 8.0 if args.quick else 15.0
    saves = {}
    for name, ai in (("redisai-fast", True), ("redis-server", False)):
        d = tempfile.mkdtemp(prefix="bench-bgsave-")
        srv = ServerProcess("--dir", d, "--save", "", cwd=d).start(timeout=120) if ai else \
            RedisServer("--dir", d, "--save", "")
        try:
            saves[name] = bgsave_case(srv.port, ai, seconds)
        finally:
            srv.stop()
            shutil.rmtree(d, ignore_errors=True)
        print(name, {k: round(v, 3) for k, v in saves[name].items()}, flush=True)
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; {m['redis-server']}; redisai-fast {m['redisai-fast']}.")
    print()
    print("| appendfsync | clients | redisai-fast TENSORSET/s | redis-server SET/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for mode, c, ours, theirs in rows:
        print(f"| {'AOF off' if mode == 'off' else mode} | {c} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")
    print()
    print("| server | BGSAVE 2 GiB took | worst PING during save | p99.9 during | worst PING, no save |")
    print("|---|---:|---:|---:|---:|")
    for name, s in saves.items():
        print(f"| {name} | {s['save_s']:.2f} s | {s['max'] / 1000:.2f} ms | {s['p999'] / 1000:.2f} ms | "
              f"{s['idle_max'] / 1000:.2f} ms |")


if __name__ == "__main__":
    main()
