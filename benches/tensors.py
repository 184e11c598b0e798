"""Tensor benchmark: AI.TENSORSET/AI.TENSORGET BLOB on redisai-fast vs SET/GET of the same bytes on
redis-server, 4 KiB / 256 KiB / 16 MiB, 1 and 50 connections, pipeline 1 and 16. redis-benchmark
drives the 4 KiB payloads, benches/loadgen the larger ones. Prints a markdown table of ops/s and ratios.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
from dataclasses import dataclass

from common import LOADGEN, RedisServer, ServerProcess, build_loadgen, interleaved, machine, write_json

SIZES = {"4 KiB": 4096, "256 KiB": 256 * 1024, "16 MiB": 16 * 1024 * 1024}
KEYSPACE = {4096: 10000, 256 * 1024: 100, 16 * 1024 * 1024: 8}


@dataclass
class Case:
    size: int
    clients: int
    pipeline: int
    write: bool

    def requests(self, quick: bool) -> int:
        base = {4096: 200_000, 256 * 1024: 20_000, 16 * 1024 * 1024: 600}[self.size]
        n = base // (4 if quick else 1)
        return max(n, self.clients * self.pipeline * 4)


def redis_benchmark(port: int, case: Case, ai: bool, n: int) -> float:
    payload = "".join(chr(ord("a") + i % 26) for i in range(case.size))
    if case.write:
        cmd = ["AI.TENSORSET", "key:__rand_int__", "UINT8", str(case.size), "BLOB", payload] if ai else \
              ["SET", "key:__rand_int__", payload]
    else:
        cmd = ["AI.TENSORGET", "key:__rand_int__", "BLOB"] if ai else ["GET", "key:__rand_int__"]
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(case.clients), "-P", str(case.pipeline), "-n", str(n),
         "-r", str(KEYSPACE[case.size]), "--csv", *cmd],
        capture_output=True, text=True, check=True, timeout=600,
    )
    rows = list(csv.reader(io.StringIO(out.stdout)))
    return float(rows[1][1])


def loadgen(port: int, case: Case, ai: bool, n: int, preload: bool = False) -> float:
    op = ("tensorset" if case.write else "tensorget") if ai else ("set" if case.write else "get")
    args = [str(LOADGEN), "--port", str(port), "--op", op, "--size", str(case.size), "--clients", str(case.clients),
            "--pipeline", str(case.pipeline), "--requests", str(n), "--keyspace", str(KEYSPACE[case.size])]
    if preload:
        args.append("--preload")
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=900)
    return json.loads(out.stdout)["ops_per_sec"]


def measure(port: int, case: Case, ai: bool, quick: bool) -> float:
    n = case.requests(quick)
    if not case.write:  # make sure every key exists
        loadgen(port, Case(case.size, 1, 1, False), ai, 0, preload=True)
    if case.size <= 64 * 1024:
        return redis_benchmark(port, case, ai, n)
    return loadgen(port, case, ai, n)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests per case")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma list of " + ", ".join(SIZES))
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per case (median)")
    args = ap.parse_args()
    build_loadgen()
    cases = [Case(SIZES[s.strip()], c, p, w) for s in args.sizes.split(",") for c in (1, 50) for p in (1, 16)
             for w in (True, False)]
    fast = ServerProcess().start()
    ref = RedisServer()
    rows = []
    try:
        for case in cases:
            ours, theirs = interleaved(lambda c=case: measure(fast.port, c, True, args.quick),
                                       lambda c=case: measure(ref.port, c, False, args.quick), args.repeat)
            label = next(k for k, v in SIZES.items() if v == case.size)
            op = "TENSORSET vs SET" if case.write else "TENSORGET vs GET"
            rows.append((label, case.clients, case.pipeline, op, ours, theirs, ours / theirs))
            print(f"{label:>8} c={case.clients:<3} P={case.pipeline:<3} {op:<17} "
                  f"ours={ours:>11,.0f}/s redis={theirs:>11,.0f}/s ratio={ours / theirs:.2f}", flush=True)
    finally:
        fast.stop()
        ref.stop()
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; {m['redis-server']}; redisai-fast {m['redisai-fast']}, "
          f"Python {m['python']}.")
    print()
    print("| payload | clients | pipeline | ops | redisai-fast ops/s | redis-server ops/s | ratio |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for label, c, p, op, ours, theirs, ratio in rows:
        print(f"| {label} | {c} | {p} | {op} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f} |")
    write_json("tensors", m, [{"payload": label, "clients": c, "pipeline": p, "op": op, "ours": ours, "redis": theirs}
                              for label, c, p, op, ours, theirs, _ in rows])


if __name__ == "__main__":
    main()
