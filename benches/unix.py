"""The Unix socket against TCP: `python benches/unix.py [--repeat N] [--quick]`.

redis-benchmark drives redisai-fast and redis-server, each listening on a TCP port and a Unix socket,
with the same commands over both (`-p` and `-s`): PING, 4 KiB SET/GET, 4 KiB AI.TENSORSET/TENSORGET
(TENSORSET for redis-server is a SET of the same bytes), at 1 and 50 clients. Medians of interleaved
repeats; the table gives ops/s and the Unix/TCP ratio of each server."""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, RedisServer, ServerProcess, machine

PAYLOAD = "x" * 4096


def bench(target: list[str], clients: int, n: int, command: list[str]) -> float:
    out = subprocess.run(["redis-benchmark", *target, "-c", str(clients), "-n", str(n), "--csv", *command],
                         capture_output=True, text=True, check=True, timeout=600)
    rows = list(csv.reader(io.StringIO(out.stdout)))
    return float(rows[-1][1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 20000 if args.quick else 100000
    d = Path(tempfile.mkdtemp(prefix="bench-unix-"))
    ours_sock, theirs_sock = d / "ours.sock", d / "redis.sock"
    ours = ServerProcess("--unixsocket", str(ours_sock), "--save", "").start()
    theirs = RedisServer("--unixsocket", str(theirs_sock), "--unixsocketperm", "700")
    cases = [
        ("PING", ["PING"], ["PING"]),
        ("SET 4 KiB", ["SET", "k:__rand_int__", PAYLOAD], ["SET", "k:__rand_int__", PAYLOAD]),
        ("GET 4 KiB", ["GET", "k:__rand_int__"], ["GET", "k:__rand_int__"]),
        ("AI.TENSORSET 4 KiB", ["AI.TENSORSET", "t:__rand_int__", "UINT8", "4096", "BLOB", PAYLOAD], ["SET", "t:__rand_int__", PAYLOAD]),
        ("AI.TENSORGET 4 KiB", ["AI.TENSORGET", "t:__rand_int__", "BLOB"], ["GET", "t:__rand_int__"]),
    ]
    lines = [f"# Unix socket vs TCP, {machine()['date']}", "",
             f"machine: {machine()['cpu']}; {machine()['redis-server']}; redisai-fast {machine()['redisai-fast']}",
             f"command: `.venv/bin/python benches/unix.py --repeat {args.repeat}{' --quick' if args.quick else ''}`", "",
             "| case | clients | ours TCP | ours Unix | ours Unix/TCP | redis TCP | redis Unix | redis Unix/TCP |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    try:
        # every key the GETs may read exists (redis-benchmark's __rand_int__ is 12 zero-padded digits)
        import redis

        for port, tensor in ((ours.port, True), (theirs.port, False)):
            p = redis.Redis(port=port).pipeline(transaction=False)
            for i in range(10000):
                p.set(f"k:{i:012d}", PAYLOAD)
                if tensor:
                    p.execute_command("AI.TENSORSET", f"t:{i:012d}", "UINT8", 4096, "BLOB", PAYLOAD)
                else:
                    p.set(f"t:{i:012d}", PAYLOAD)
            p.execute()
        for name, ours_cmd, theirs_cmd in cases:
            for clients in (1, 50):
                samples: dict[str, list[float]] = {k: [] for k in ("ot", "ou", "rt", "ru")}
                for _ in range(args.repeat):
                    samples["ot"].append(bench(["-p", str(ours.port)], clients, n, ["-r", "10000", *ours_cmd]))
                    samples["ou"].append(bench(["-s", str(ours_sock)], clients, n, ["-r", "10000", *ours_cmd]))
                    samples["rt"].append(bench(["-p", str(theirs.port)], clients, n, ["-r", "10000", *theirs_cmd]))
                    samples["ru"].append(bench(["-s", str(theirs_sock)], clients, n, ["-r", "10000", *theirs_cmd]))
                m = {k: statistics.median(v) for k, v in samples.items()}
                lines.append(f"| {name} | {clients} | {m['ot']:,.0f} | {m['ou']:,.0f} | {m['ou'] / m['ot']:.2f} | "
                             f"{m['rt']:,.0f} | {m['ru']:,.0f} | {m['ru'] / m['rt']:.2f} |")
                print(lines[-1], flush=True)
    finally:
        ours.stop()
        theirs.stop()
    text = "\n".join(lines) + "\n"
    out = ROOT / "benches" / "results" / f"unix-{time.strftime('%Y-%m-%d')}.txt"
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
