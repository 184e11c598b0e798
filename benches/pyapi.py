"""The Python API: `redisai_fast.open()` (the core in this process) against redis-py and
redisai-py over loopback to a redisai-fast server: 4 KiB and 16 MiB AI.TENSORSET/AI.TENSORGET,
the 4 KiB round trip (one of each) and a tiny-model AI.MODELEXECUTE.

    .venv/bin/python benches/pyapi.py [--repeat 5] [--quick]

Each client gets numpy arrays in and out (redis-py: the BLOB reply through `numpy.frombuffer`).
The server the network clients use is `redisai_fast.Server` (a child process); redisai-py runs
from .venv-clients (its old pins), in a subprocess of this script (`--redisai-py PORT` is that
mode). Repeats are interleaved (in-process, redis-py, redisai-py, again); the table gives the
median µs per call and the spread over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"
SMALL = 1024  # FLOAT elements: 4 KiB
BIG = 4 << 20  # FLOAT elements: 16 MiB
CASES = ["tensorset 4 KiB", "tensorget 4 KiB", "round trip 4 KiB", "tensorset 16 MiB", "tensorget 16 MiB",
         "modelexecute (ONNX 4x3)"]


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    fn()  # warm: first calls allocate, load, connect
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def calls_for(case: str, in_process: bool, scale: float) -> int:
    if "16 MiB" in case:
        n = 2000 if in_process and "get" in case else 20
    elif in_process:
        n = 20000
    else:
        n = 2000
    return max(5, int(n * scale))


def measure(ops: dict[str, Callable[[], Any]], in_process: bool, scale: float) -> dict[str, float]:
    return {case: per_call_us(fn, calls_for(case, in_process, scale)) for case, fn in ops.items()}


def array_ops(tensorset: Callable[[str, np.ndarray], Any], tensorget: Callable[[str], Any],
              modelexecute: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    small = np.random.default_rng(0).random(SMALL, dtype=np.float32)
    big = np.random.default_rng(1).random(BIG, dtype=np.float32)
    tensorset("s", small)
    tensorset("b", big)
    tensorset("x", np.ones((1, 4), np.float32))

    def round_trip() -> None:
        tensorset("r", small)
        tensorget("r")

    return {
        "tensorset 4 KiB": lambda: tensorset("s", small),
        "tensorget 4 KiB": lambda: tensorget("s"),
        "round trip 4 KiB": round_trip,
        "tensorset 16 MiB": lambda: tensorset("b", big),
        "tensorget 16 MiB": lambda: tensorget("b"),
        "modelexecute (ONNX 4x3)": modelexecute,
    }


def redis_py_ops(port: int) -> dict[str, Callable[[], Any]]:
    import redis

    r = redis.Redis(port=port, protocol=2)

    def tensorset(key: str, a: np.ndarray) -> Any:
        return r.execute_command("AI.TENSORSET", key, "FLOAT", *a.shape, "BLOB", memoryview(a).cast("B"))

    def tensorget(key: str) -> np.ndarray:
        reply = r.execute_command("AI.TENSORGET", key, "META", "BLOB")
        return np.frombuffer(reply[5], np.float32).reshape(reply[3])

    return array_ops(tensorset, tensorget, lambda: r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x",
                                                                      "OUTPUTS", 1, "y"))


def redisai_py_ops(port: int) -> dict[str, Callable[[], Any]]:
    import redisai

    con = redisai.Client(port=port)
    return array_ops(con.tensorset, con.tensorget, lambda: con.modelexecute("m", "x", "y"))


def redisai_py_child(port: int, scale: float) -> None:
    """`--redisai-py PORT`: runs in .venv-clients and prints the timings as JSON."""
    print(json.dumps(measure(redisai_py_ops(port), False, scale)))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}–{max(values):,.1f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="a tenth of the calls, 2 repeats")
    p.add_argument("--redisai-py", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.redisai_py:
        redisai_py_child(args.redisai_py, args.scale)
        return
    scale, repeat = (0.1, 2) if args.quick else (args.scale, args.repeat)

    sys.path.insert(0, str(ROOT))
    import redisai_fast

    from benches.common import machine
    from tests.support import models

    model = models.onnx_linear()
    server = redisai_fast.Server(save="")
    db = redisai_fast.open()
    try:
        setup = server.client()
        setup.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", model)
        db.modelstore("m", "ONNX", "CPU", model)
        local = array_ops(db.tensorset, db.tensorget, lambda: db.modelexecute("m", "x", "y"))
        remote = redis_py_ops(server.port or 0)
        with_redisai_py = CLIENTS_PYTHON.exists()
        runs: dict[str, dict[str, list[float]]] = {"in-process": {}, "redis-py": {}, "redisai-py": {}}
        for _ in range(repeat):
            for name, timings in (("in-process", measure(local, True, scale)), ("redis-py", measure(remote, False, scale))):
                for case, us in timings.items():
                    runs[name].setdefault(case, []).append(us)
            if with_redisai_py:
                out = subprocess.run([str(CLIENTS_PYTHON), __file__, "--redisai-py", str(server.port), "--scale", str(scale)],
                                     capture_output=True, text=True, check=True)
                for case, us in json.loads(out.stdout).items():
                    runs["redisai-py"].setdefault(case, []).append(us)
    finally:
        db.close()
        server.stop()

    info = machine()
    print(f"# {info['date']} | {info['cpu']} | Python {info['python']} | redisai-fast {info['redisai-fast']}")
    print(f"# {' '.join(sys.argv)} (repeat {repeat}, scale {scale}); µs per call, median (min–max) of the repeats")
    print()
    print("| operation | in-process µs | redis-py µs | redisai-py µs | redis-py / in-process | redisai-py / in-process |")
    print("|---|---:|---:|---:|---:|---:|")
    for case in CASES:
        ours, theirs = runs["in-process"][case], runs["redis-py"][case]
        rai = runs["redisai-py"].get(case)
        ratio_rai = f"{statistics.median(rai) / statistics.median(ours):,.1f}x" if rai else "n/a"
        print(f"| {case} | {spread(ours)} | {spread(theirs)} | {spread(rai) if rai else 'n/a'} | "
              f"{statistics.median(theirs) / statistics.median(ours):,.1f}x | {ratio_rai} |")
    get_small, get_big = (statistics.median(runs["in-process"][f"tensorget {s}"]) for s in ("4 KiB", "16 MiB"))
    print()
    print(f"in-process tensorget 16 MiB / 4 KiB: {get_big / get_small:.2f}x the time for 4096x the bytes")


if __name__ == "__main__":
    main()
