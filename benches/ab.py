"""A/B of two redisai-fast builds on the per-command path, with redis-server in the same run:
PING and 4 KiB AI.TENSORSET/AI.TENSORGET (SET/GET on redis-server) at 1 and 50 clients, pipeline 1
and 16, driven by redis-benchmark, the three servers interleaved `--repeat` times (medians and
min-max). `--base` is the other build's `redisai-fast` entry point (e.g. a venv with main's wheel).
Besides ops/s it reports each server's CPU time per command (user + system, from /proc), which a
busy shared machine disturbs far less than throughput.

    python benches/ab.py --base /tmp/base-venv/bin/redisai-fast --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess

from common import LOADGEN, RedisServer, ServerProcess, build_loadgen, cpu_seconds, machine

PAYLOAD = "x" * 4096


CPU: dict[str, list[float]] = {}


def rb(port: int, clients: int, pipeline: int, n: int, cmd: list[str], pid: int = 0, tag: str = "") -> float:
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-P", str(pipeline), "-n", str(n),
                          "-r", "10000", "--csv", *cmd], capture_output=True, text=True, check=True, timeout=600)
    if pid:
        CPU.setdefault(tag, []).append((cpu_seconds(pid) - before) / n * 1e6)
    return float(list(csv.reader(io.StringIO(out.stdout)))[1][1])


CASES = [
    ("PING", ["PING"], ["PING"]),
    ("4 KiB set", ["AI.TENSORSET", "key:__rand_int__", "UINT8", "4096", "BLOB", PAYLOAD], ["SET", "key:__rand_int__", PAYLOAD]),
    ("4 KiB get", ["AI.TENSORGET", "key:__rand_int__", "BLOB"], ["GET", "key:__rand_int__"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the other build's redisai-fast executable")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100_000)
    args = ap.parse_args()
    build_loadgen()
    new = ServerProcess().start()
    os.environ["REDISAI_FAST_BIN"] = args.base  # ServerProcess starts what this names
    old = ServerProcess().start()
    del os.environ["REDISAI_FAST_BIN"]
    ref = RedisServer()
    rows = []
    try:
        for name, ai_cmd, redis_cmd in CASES:
            if name == "4 KiB get":  # every key exists before the reads
                for port, op in ((new.port, "tensorget"), (old.port, "tensorget"), (ref.port, "get")):
                    subprocess.run([str(LOADGEN), "--port", str(port), "--op", op, "--size", "4096", "--clients", "1",
                                    "--pipeline", "1", "--requests", "0", "--keyspace", "10000", "--preload"],
                                   check=True, capture_output=True, timeout=300)
            for clients in (1, 50):
                for pipeline in (1, 16):
                    n = args.requests // (4 if clients == 1 and pipeline == 1 else 1)
                    runs: dict[str, list[float]] = {"new": [], "old": [], "redis": []}
                    tag = f"{name}/{clients}/{pipeline}"
                    for _ in range(args.repeat):
                        runs["new"].append(rb(new.port, clients, pipeline, n, ai_cmd, new.pid, "new " + tag))
                        runs["old"].append(rb(old.port, clients, pipeline, n, ai_cmd, old.pid, "old " + tag))
                        runs["redis"].append(rb(ref.port, clients, pipeline, n, redis_cmd, ref.proc.pid, "redis " + tag))
                    med = {k: statistics.median(v) for k, v in runs.items()}
                    cpu = {k: statistics.median(CPU[f"{k} {tag}"]) for k in runs}
                    rows.append((name, clients, pipeline, med, runs, cpu))
                    print(f"{name:<10} c={clients:<3} P={pipeline:<3} new={med['new']:>10,.0f} old={med['old']:>10,.0f} "
                          f"redis={med['redis']:>10,.0f}  new/old={med['new'] / med['old']:.2f} "
                          f"new/redis={med['new'] / med['redis']:.2f} old/redis={med['old'] / med['redis']:.2f} "
                          f"cpu us/op new={cpu['new']:.2f} old={cpu['old']:.2f} redis={cpu['redis']:.2f}", flush=True)
    finally:
        new.stop()
        old.stop()
        ref.stop()
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; {m['redis-server']}; median of {args.repeat} interleaved runs "
          f"(min-max in brackets), ops/s.")
    print()
    print("| case | clients | pipeline | new | old | redis-server | new/old | new/redis | old/redis |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, c, p, med, runs, _ in rows:
        span = {k: f"{min(v):,.0f}-{max(v):,.0f}" for k, v in runs.items()}
        print(f"| {name} | {c} | {p} | {med['new']:,.0f} ({span['new']}) | {med['old']:,.0f} ({span['old']}) | "
              f"{med['redis']:,.0f} ({span['redis']}) | {med['new'] / med['old']:.2f} | {med['new'] / med['redis']:.2f} | "
              f"{med['old'] / med['redis']:.2f} |")
    print()
    print("Server CPU time per command, µs (user + system; median of the runs, min-max in brackets):")
    print()
    print("| case | clients | pipeline | new | old | redis-server | new/old |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, c, p, _, _, cpu in rows:
        tag = f"{name}/{c}/{p}"
        span = {k: f"{min(CPU[f'{k} {tag}']):.2f}-{max(CPU[f'{k} {tag}']):.2f}" for k in cpu}
        print(f"| {name} | {c} | {p} | {cpu['new']:.2f} ({span['new']}) | {cpu['old']:.2f} ({span['old']}) | "
              f"{cpu['redis']:.2f} ({span['redis']}) | {cpu['new'] / cpu['old']:.2f} |")


if __name__ == "__main__":
    main()
