"""Server CPU per request of this build against another build of redisai-fast, both running at
once, interleaved runs of `redis-benchmark -c 50 -P 16`, busy polling off on both (CPU per request
is steadier than throughput on a shared machine). The other build is a `python/` folder holding
its `redisai_fast` package with its compiled `_core*.so`, e.g. for commit C:

    git archive C | tar -x -C /tmp/base && (cd /tmp/base && cargo build --release -p redisai_py)
    cp /tmp/base/target/release/lib_core.so /tmp/base/python/redisai_fast/_core.cpython-311-x86_64-linux-gnu.so
    .venv/bin/python benches/ab_cpu.py --other /tmp/base/python --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import subprocess

from common import ServerProcess, cpu_seconds, machine

PAYLOAD = "x" * 4096
SMALL = "abcdefghijklmnop"
CASES = {
    "SET 4K": ["SET", "s4:__rand_int__", PAYLOAD],
    "TENSORSET 4K": ["AI.TENSORSET", "t4:__rand_int__", "UINT8", "4096", "BLOB", PAYLOAD],
    "TENSORGET 4K": ["AI.TENSORGET", "t4:__rand_int__", "BLOB"],
    "SET 16B": ["SET", "s:__rand_int__", SMALL],
    "GET 16B": ["GET", "s:__rand_int__"],
    "TENSORSET 16B": ["AI.TENSORSET", "t:__rand_int__", "FLOAT", "4", "BLOB", SMALL],
    "TENSORGET 16B": ["AI.TENSORGET", "t:__rand_int__", "BLOB"],
}


def bench(port: int, cmd: list[str], n: int) -> float:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-P", "16", "-n", str(n), "-r", "10000",
                          "--csv", *cmd], capture_output=True, text=True, check=True, timeout=600)
    return float(list(csv.reader(io.StringIO(out.stdout)))[1][1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", required=True, help="python/ folder of the other build")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--cases", default=",".join(CASES))
    a = ap.parse_args()
    info = machine()
    print(", ".join(f"{k}: {v}" for k, v in info.items()))
    servers = {"other": ServerProcess("--busy-poll-us", "0", env={"PYTHONPATH": a.other}).start(),
               "this": ServerProcess("--busy-poll-us", "0").start()}
    try:
        print("| case | other µs/request (range) | this µs/request (range) | this/other | other req/s | this req/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in a.cases.split(","):
            cpu: dict[str, list[float]] = {k: [] for k in servers}
            rate: dict[str, list[float]] = {k: [] for k in servers}
            for _ in range(a.repeat):
                for k, s in servers.items():
                    before = cpu_seconds(s.pid)
                    rate[k].append(bench(s.port, CASES[name], a.requests))
                    cpu[k].append((cpu_seconds(s.pid) - before) / a.requests * 1e6)
            o, t = statistics.median(cpu["other"]), statistics.median(cpu["this"])
            print(f"| {name} | {o:.2f} ({min(cpu['other']):.2f}-{max(cpu['other']):.2f}) | "
                  f"{t:.2f} ({min(cpu['this']):.2f}-{max(cpu['this']):.2f}) | {t / o:.2f} | "
                  f"{statistics.median(rate['other']):,.0f} | {statistics.median(rate['this']):,.0f} |", flush=True)
    finally:
        for s in servers.values():
            s.stop()


if __name__ == "__main__":
    main()
