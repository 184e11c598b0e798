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
import statistics
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
    """One connection, PING after PING for `seconds`; sends back (start time, latency µs) of each."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pings = []
    end = time.time() + seconds
    while (t0 := time.time()) < end:
        p0 = time.perf_counter()
        s.sendall(b"PING\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            got += s.recv(64)
        pings.append((t0, (time.perf_counter() - p0) * 1e6))
    s.close()
    q.put(pings)


def pings_during(port: int, action, seconds: float) -> tuple[float, float, int]:
    """Runs `action()` while a PING loop runs in another process. `action` returns the wall-clock
    interval to judge (None: the whole window). Returns (worst µs, p99.9 µs, pings) in it."""
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=ping_loop, args=(port, seconds, q))
    p.start()
    time.sleep(0.2)
    window = action()
    pings = q.get()
    p.join()
    if window is not None:
        pings = [(t, d) for t, d in pings if window[0] <= t <= window[1]]
    lat = sorted(d for _, d in pings)
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
    idle = pings_during(port, lambda: time.sleep(seconds - 0.4), seconds)  # baseline: the whole window
    took = {}

    def save() -> tuple[float, float]:
        before = int(r.lastsave().timestamp())
        time.sleep(max(0.0, before + 1.05 - time.time()))  # LASTSAVE has 1 s resolution
        t0, w0 = time.perf_counter(), time.time()
        assert r.bgsave()
        wait_bgsave(r, before)
        took["s"] = time.perf_counter() - t0
        return w0, time.time()

    during = pings_during(port, save, seconds)
    return {"idle_max": idle[0], "idle_p999": idle[1], "max": during[0], "p999": during[1],
            "pings": during[2], "save_s": took["s"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter ping windows")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per case (median)")
    ap.add_argument("--part", choices=("all", "aof", "bgsave"), default="all")
    args = ap.parse_args()
    build_loadgen()
    n = 20_000 if args.quick else 100_000
    rows = []
    for mode in FSYNC if args.part in ("all", "aof") else ():
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
    saves: dict[str, list[dict[str, float]]] = {"redisai-fast": [], "redis-server": []}
    for _ in range(args.repeat if args.part in ("all", "bgsave") else 0):  # alternating, fresh servers
        for name, ai in (("redisai-fast", True), ("redis-server", False)):
            d = tempfile.mkdtemp(prefix="bench-bgsave-")
            srv = ServerProcess("--dir", d, "--save", "", cwd=d).start(timeout=120) if ai else \
                RedisServer("--dir", d, "--save", "")
            try:
                saves[name].append(bgsave_case(srv.port, ai, seconds))
            finally:
                srv.stop()
                shutil.rmtree(d, ignore_errors=True)
            print(name, {k: round(v, 3) for k, v in saves[name][-1].items()}, flush=True)
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; {m['redis-server']}; redisai-fast {m['redisai-fast']}.")
    print()
    if rows:
        print("| appendfsync | clients | redisai-fast TENSORSET/s | redis-server SET/s | ratio |")
        print("|---|---:|---:|---:|---:|")
    for mode, c, ours, theirs in rows:
        print(f"| {'AOF off' if mode == 'off' else mode} | {c} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |")
    print()
    print(f"BGSAVE of 2 GiB (128 x 16 MiB) while another process PINGs; median of {args.repeat} runs "
          "(worst of all runs in brackets).")
    print()
    print("| server | BGSAVE took | worst PING during save | p99.9 during save | worst PING over 15 s, no save |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in saves.items() if args.part in ("all", "bgsave") else ():
        def med(k: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[k] for r in runs)

        def worst(k: str, runs: list[dict[str, float]] = runs) -> float:
            return max(r[k] for r in runs)

        print(f"| {name} | {med('save_s'):.2f} s | {med('max') / 1000:.1f} ms ({worst('max') / 1000:.1f}) | "
              f"{med('p999') / 1000:.2f} ms | {med('idle_max') / 1000:.1f} ms ({worst('idle_max') / 1000:.1f}) |")


if __name__ == "__main__":
    main()
