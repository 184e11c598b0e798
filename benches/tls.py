"""TLS benchmark: 4 KiB AI.TENSORSET/AI.TENSORGET BLOB on redisai-fast's `tls-port` vs SET/GET of the
same bytes on redis-server's `tls-port`, both with client certificates from one test CA, driven by
`redis-benchmark --tls` at 1 and 50 connections. Prints a markdown table of ops/s and ratios.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import tempfile
from pathlib import Path

from common import (
    LOADGEN,
    RedisServer,
    ServerProcess,
    build_loadgen,
    free_port,
    interleaved,
    machine,
    write_json,
)

from tests.support.tls import Pki, make_pki


def tls_flags(pki: Pki) -> list[str]:
    return ["--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes"]


def bench(port: int, pki: Pki, clients: int, write: bool, ai: bool, n: int) -> float:
    payload = "x" * 4096
    if write:
        cmd = ["AI.TENSORSET", "key:__rand_int__", "UINT8", "4096", "BLOB", payload] if ai else \
              ["SET", "key:__rand_int__", payload]
    else:
        cmd = ["AI.TENSORGET", "key:__rand_int__", "BLOB"] if ai else ["GET", "key:__rand_int__"]
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "--tls", "--cacert", str(pki.ca), "--cert", str(pki.client_cert),
         "--key", str(pki.client_key), "-c", str(clients), "-n", str(n), "-r", "10000", "--csv", *cmd],
        capture_output=True, text=True, check=True, timeout=600,
    )
    return float(list(csv.reader(io.StringIO(out.stdout)))[1][1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests per case")
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs per case (median)")
    ap.add_argument("server_args", nargs="*", help="extra redisai-fast options, e.g. -- --busy-poll-us 0")
    args = ap.parse_args()
    server_args = args.server_args
    build_loadgen()
    with tempfile.TemporaryDirectory(prefix="bench-pki-") as d:
        pki = make_pki(Path(d))
        tls_port = free_port()
        fast = ServerProcess("--tls-port", str(tls_port), *tls_flags(pki), *server_args).start()
        # redis-server's plain port only loads the keys for the read runs
        ref_tls = free_port()
        ref = RedisServer("--tls-port", str(ref_tls), *tls_flags(pki))
        rows = []
        try:
            for clients in (1, 50):
                for write in (True, False):
                    n = (20_000 if clients == 1 else 100_000) // (4 if args.quick else 1)
                    if not write:  # every key exists before the reads (written through the plain ports)
                        for port, op in ((fast.port, "tensorget"), (ref.port, "get")):
                            subprocess.run([str(LOADGEN), "--port", str(port), "--op", op, "--size", "4096",
                                            "--clients", "1", "--pipeline", "1", "--requests", "0", "--keyspace",
                                            "10000", "--preload"], check=True, capture_output=True, timeout=300)
                    ours, theirs = interleaved(lambda c=clients, w=write, k=n: bench(tls_port, pki, c, w, True, k),
                                               lambda c=clients, w=write, k=n: bench(ref_tls, pki, c, w, False, k),
                                               args.repeat)
                    op = "TENSORSET vs SET" if write else "TENSORGET vs GET"
                    rows.append({"clients": clients, "op": op, "ours": ours, "redis": theirs, "ratio": ours / theirs})
                    print(f"TLS 4 KiB c={clients:<3} {op:<17} ours={ours:>10,.0f}/s redis={theirs:>10,.0f}/s "
                          f"ratio={ours / theirs:.2f}", flush=True)
        finally:
            fast.stop()
            ref.stop()
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; {m['redis-server']}; redisai-fast {m['redisai-fast']}, "
          f"Python {m['python']}; median of {args.repeat} interleaved runs.")
    print()
    print("| payload | clients | ops | redisai-fast ops/s | redis-server ops/s | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| 4 KiB over TLS | {r['clients']} | {r['op']} | {r['ours']:,.0f} | {r['redis']:,.0f} | {r['ratio']:.2f} |")
    write_json("tls", m, rows)


if __name__ == "__main__":
    main()
