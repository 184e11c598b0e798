"""Side by side with RedisAI 1.2.7: the comparison table of issue 14 as a reproducible benchmark.

Both servers run with one worker per device queue, one intra-op and one inter-op thread, and the
same models, generated here: PING at 1 client; a tiny ONNX MLP 4-8-3 at 1 and 50 clients; the same
MLP in TorchScript at 1 and 50 clients; an ONNX MLP 256 -> 4x1024 -> 16 at 32 clients, unbatched
and with BATCHSIZE 32 (next to the in-process limit: 32-row batches run back to back by onnxruntime
with one thread). Each case is redis-benchmark against both servers, repeated and interleaved
(the order alternates); the table gives medians and the spread. Server CPU per request is the
process's utime+stime over a run divided by its requests. The 1-client rows also give the exact
p50 from benches/loadgen (redis-benchmark rounds it).

RedisAI is a build made by ../shared/peers/redisai/build.sh (the peers folder beside the
repository; see its README): `--peer PREFIX` or $REDISAI_PEER, default /tmp/peer. Without one the
benchmark says so and exits 0.

    .venv/bin/python benches/redisai.py [--repeat 3] [--quick] [--peer PREFIX] [--out FILE.txt]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
from common import LOADGEN, ROOT, ServerProcess, build_loadgen, cpu_seconds, free_port, machine

from tests.support.models import torch_mlp

TINY = (4, 8, 3)
BIG_IN, BIG_HIDDEN, BIG_LAYERS, BIG_OUT = 256, 1024, 4, 16


# ---------------------------------------------------------------- models (deterministic weights)

def _onnx_mlp(sizes: list[int], seed: int) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (rng.standard_normal(b) / 10).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        last = i == len(sizes) - 2
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], ["y" if last else f"a{i}"])]
        if not last:
            nodes.append(helper.make_node("Relu", [f"a{i}"], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", sizes[-1]])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def models() -> dict[str, tuple[str, bytes, int]]:
    """key -> (backend, blob, input width)."""
    big = [BIG_IN, *[BIG_HIDDEN] * BIG_LAYERS, BIG_OUT]
    big_onnx = _onnx_mlp(big, 2)
    return {
        "tiny_onnx": ("ONNX", _onnx_mlp(list(TINY), 1), TINY[0]),
        "tiny_torch": ("TORCH", torch_mlp(TINY, 1), TINY[0]),
        "big_onnx": ("ONNX", big_onnx, BIG_IN),
        "big_onnx_b32": ("ONNX", big_onnx, BIG_IN),
    }


@dataclass(frozen=True)
class Case:
    label: str
    clients: int
    requests: int
    model: str | None  # None: PING

    def command(self) -> list[str]:
        if self.model is None:
            return ["PING"]
        x = "xb" if self.model.startswith("big") else "xt"
        return ["AI.MODELEXECUTE", self.model, "INPUTS", "1", x, "OUTPUTS", "1", f"y_{self.model}"]


def cases(scale: float) -> list[Case]:
    def n(k: int) -> int:
        return max(1000, int(k * scale))

    return [
        Case("PING", 1, n(60000), None),
        Case("tiny ONNX MLP 4-8-3", 1, n(40000), "tiny_onnx"),
        Case("tiny ONNX MLP 4-8-3", 50, n(300000), "tiny_onnx"),
        Case("tiny TorchScript MLP 4-8-3", 1, n(40000), "tiny_torch"),
        Case("tiny TorchScript MLP 4-8-3", 50, n(200000), "tiny_torch"),
        Case("ONNX MLP 256-4x1024-16", 32, n(15000), "big_onnx"),
        Case("same, BATCHSIZE 32", 32, n(60000), "big_onnx_b32"),
    ]


# ---------------------------------------------------------------- the two servers

class RedisAIPeer:
    """RedisAI 1.2.7 in Debian's redis-server, started and stopped by the peer's scripts."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.port = free_port()
        env = {**os.environ, "REDISAI_PEER_PREFIX": str(prefix), "REDISAI_BACKENDS": "ONNX TORCH",
               "REDISAI_MODULE_ARGS": "THREADS_PER_QUEUE 1 INTRA_OP_PARALLELISM 1 INTER_OP_PARALLELISM 1"}
        subprocess.run([str(prefix / "start-redisai.sh"), str(self.port)], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=180)
        self.pid = int((prefix / f"redisai-{self.port}.pid").read_text())

    def stop(self) -> None:
        env = {**os.environ, "REDISAI_PEER_PREFIX": str(self.prefix)}
        subprocess.run([str(self.prefix / "stop-redisai.sh"), str(self.port)], env=env, check=False,
                       stdout=subprocess.DEVNULL, timeout=60)


def find_peer(given: str | None) -> Path | None:
    prefix = Path(given or os.environ.get("REDISAI_PEER") or "/tmp/peer")
    ok = (prefix / "install-cpu" / "redisai.so").is_file() and (prefix / "start-redisai.sh").is_file()
    return prefix if ok else None


def load_models(port: int, blobs: dict[str, tuple[str, bytes, int]]) -> None:
    r = redis.Redis(port=port, protocol=2)
    rng = np.random.default_rng(3)
    r.execute_command("AI.TENSORSET", "xt", "FLOAT", 1, TINY[0], "BLOB", rng.standard_normal((1, TINY[0])).astype(np.float32).tobytes())
    r.execute_command("AI.TENSORSET", "xb", "FLOAT", 1, BIG_IN, "BLOB", rng.standard_normal((1, BIG_IN)).astype(np.float32).tobytes())
    for key, (backend, blob, _) in blobs.items():
        batch = ["BATCHSIZE", "32"] if key.endswith("_b32") else []
        r.execute_command("AI.MODELSTORE", key, backend, "CPU", *batch, "BLOB", blob)
    r.close()


def same_outputs(ports: list[int], blobs: dict[str, tuple[str, bytes, int]]) -> None:
    """Both servers must compute the same thing before their speeds are compared."""
    outs = []
    for port in ports:
        r = redis.Redis(port=port, protocol=2)
        got = {}
        for key in blobs:
            x = "xb" if key.startswith("big") else "xt"
            r.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, x, "OUTPUTS", 1, "check")
            got[key] = np.frombuffer(r.execute_command("AI.TENSORGET", "check", "BLOB"), np.float32)
        outs.append(got)
        r.close()
    for key in blobs:
        np.testing.assert_allclose(outs[0][key], outs[1][key], rtol=1e-4, atol=1e-5, err_msg=key)


# ---------------------------------------------------------------- measurements

@dataclass
class Sample:
    rps: float
    p50_us: float
    cpu_us: float  # server CPU per request
    exact_p50_us: float | None = None


@dataclass
class Row:
    case: Case
    ours: list[Sample] = field(default_factory=list)
    theirs: list[Sample] = field(default_factory=list)
    other: list[Sample] = field(default_factory=list)  # --other: another build of ours, same cases


def redis_benchmark(port: int, case: Case, pid: int) -> Sample:
    c0 = cpu_seconds(pid)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(case.clients), "-n", str(case.requests), "--csv",
                          *case.command()], capture_output=True, text=True, check=True, timeout=900)
    cpu = cpu_seconds(pid) - c0
    row = list(csv.reader(io.StringIO(out.stdout)))[1]
    return Sample(rps=float(row[1]), p50_us=float(row[4]) * 1000, cpu_us=cpu * 1e6 / case.requests)


def loadgen_p50(port: int, case: Case) -> float:
    out = subprocess.run([str(LOADGEN), "--port", str(port), "--clients", "1", "--requests", str(case.requests // 2),
                          "--command", " ".join(case.command())], capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout)["batch_p50_us"])


def measure(port: int, pid: int, case: Case) -> Sample:
    s = redis_benchmark(port, case, pid)
    if case.clients == 1:
        s.exact_p50_us = loadgen_p50(port, case)
    return s


def in_process_batched_rows_per_s(blob: bytes, seconds: float) -> float:
    """The in-process limit: 32-row batches run back to back by onnxruntime, one thread (measured
    right before the servers' batched runs, for about as long, so they see the same machine)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(4).standard_normal((32, BIG_IN)).astype(np.float32)
    for _ in range(20):
        s.run(None, {"x": x})
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        s.run(None, {"x": x})
        times.append(time.perf_counter() - t0)
    return 32 / statistics.median(times)


# ---------------------------------------------------------------- report

def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def ratios(row: Row, attr: str) -> list[float]:
    return [getattr(a, attr) / getattr(b, attr) for a, b in zip(row.ours, row.theirs)]


def table(rows: list[Row], limit: list[float]) -> str:
    lines = [("| case | clients | redisai-fast req/s | RedisAI req/s | throughput ratio | server CPU µs/req (ours / RedisAI) "
              "| CPU ratio | p50 µs (ours / RedisAI) |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        med = statistics.median
        ours_p50 = [s.exact_p50_us or s.p50_us for s in row.ours]
        theirs_p50 = [s.exact_p50_us or s.p50_us for s in row.theirs]
        lines.append(
            f"| {row.case.label} | {row.case.clients} | {med(s.rps for s in row.ours):,.0f} | "
            f"{med(s.rps for s in row.theirs):,.0f} | {spread(ratios(row, 'rps'))} | "
            f"{med(s.cpu_us for s in row.ours):.1f} / {med(s.cpu_us for s in row.theirs):.1f} | "
            f"{spread(ratios(row, 'cpu_us'))} | {med(ours_p50):.1f} / {med(theirs_p50):.1f} |")
    batched = next((r for r in rows if r.case.model == "big_onnx_b32"), None)
    if batched is not None:
        lim = statistics.median(limit)
        lines += ["", (f"In-process limit of the 4x1024 MLP (32-row batches back to back, onnxruntime, 1 thread): "
              f"{spread(limit, '{:,.0f}')} rows/s. BATCHSIZE 32 at 32 clients reaches "
              f"{spread([s.rps / lim for s in batched.ours])} of it (redisai-fast) and "
              f"{spread([s.rps / lim for s in batched.theirs])} (RedisAI).")]
    lines.append("1-client p50s are benches/loadgen's exact ones; the other rows' are redis-benchmark's.")
    others = [r for r in rows if r.other]
    if others:
        lines += ["", "This build against the other build (`--other`), same run: req/s, and p50 µs (exact at 1 client)", "",
                  "| case | clients | this build req/s | other build req/s | this / other | p50 this / other |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in others:
            this = [s.exact_p50_us or s.p50_us for s in r.ours]
            that = [s.exact_p50_us or s.p50_us for s in r.other]
            lines.append(f"| {r.case.label} | {r.case.clients} | {spread([s.rps for s in r.ours], '{:,.0f}')} | "
                         f"{spread([s.rps for s in r.other], '{:,.0f}')} | "
                         f"{spread([a.rps / b.rps for a, b in zip(r.ours, r.other)])} | "
                         f"{spread([a / b for a, b in zip(this, that)])} |")
    return "\n".join(lines)


# issue 14's targets, drawn as dashed marks: (model, clients) -> (throughput ratio at least, CPU ratio at most)
TARGETS = {("tiny_onnx", 50): (1.5, 0.7), ("tiny_torch", 50): (1.5, 0.7), ("big_onnx", 32): (1.2, None),
           ("big_onnx_b32", 32): (1.0, None)}


def plot(rows: list[Row], limit: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.case.label}\n{r.case.clients} client{'s' if r.case.clients > 1 else ''}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    for ax, attr, name, target in ((axes[0], "rps", "throughput, redisai-fast / RedisAI", 1.0),
                                   (axes[1], "cpu_us", "server CPU per request, redisai-fast / RedisAI", 1.0)):
        meds, lo, hi = [], [], []
        for r in rows:
            v = ratios(r, attr)
            m = statistics.median(v)
            meds.append(m)
            lo.append(m - min(v))
            hi.append(max(v) - m)
        ypos = np.arange(len(rows))[::-1]
        better = [(m >= 1) if attr == "rps" else (m <= 1) for m in meds]
        ax.barh(ypos, meds, xerr=[lo, hi], color=["#2b8a3e" if b else "#c92a2a" for b in better], alpha=0.85, capsize=3)
        ax.axvline(target, color="black", lw=1)
        for y, m, h, r in zip(ypos, meds, hi, rows):
            ax.text(m + h + 0.04, y, f"{m:.2f}", va="center", fontsize=9)
            target = TARGETS.get((r.case.model or "", r.case.clients), (None, None))[0 if attr == "rps" else 1]
            if target is not None:
                ax.plot([target, target], [y - 0.42, y + 0.42], "k--", lw=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.set_xlim(0, max(2.0, max(m + h for m, h in zip(meds, hi)) * 1.15))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_xlabel("ratio (right of 1 = redisai-fast faster); dashed: issue 14's target")
    axes[1].set_xlabel("ratio (left of 1 = redisai-fast cheaper); dashed: issue 14's target")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replot(report: Path) -> int:
    """Redraws `report`'s PNG from the raw samples it lists."""
    text = report.read_text()
    raw = json.loads(text.split("Raw samples:\n", 1)[1])
    by_name = {f"{c.label} c={c.clients}": c for c in cases(1.0)}
    rows = []
    for name, sides in raw.items():
        if name in by_name:
            row = Row(by_name[name], [Sample(**v) for v in sides["ours"]], [Sample(**v) for v in sides["theirs"]])
            rows.append(row)
    plot(rows, raw.get("in_process_rows_per_s", []), report.with_suffix(".png"), text.split(";")[0])
    print(f"wrote {report.with_suffix('.png')}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a quarter of the requests")
    ap.add_argument("--peer", help="the RedisAI build (build.sh's PREFIX); default $REDISAI_PEER or /tmp/peer")
    ap.add_argument("--out", help="write the report (and a .png beside it) here; default benches/results/redisai-DATE.txt")
    ap.add_argument("--only", help="comma-separated case numbers (1-based) to run")
    ap.add_argument("--other", help="python/ folder of another build of redisai-fast (its redisai_fast package with "
                    "its compiled _core), measured in every case beside this build (see benches/ab_cpu.py for making one)")
    ap.add_argument("--replot", help="only redraw the PNG of an earlier report (its .txt)")
    ap.add_argument("server_args", nargs="*", help="extra options for redisai-fast, after --")
    args = ap.parse_args()
    if args.replot:
        return replot(Path(args.replot))
    peer = find_peer(args.peer)
    if peer is None:
        print("redisai benchmark skipped: no RedisAI build found (--peer PREFIX, $REDISAI_PEER or /tmp/peer). Build one "
              "with ../shared/peers/redisai/build.sh PREFIX (see the README beside it; a few minutes).")
        return 0
    all_cases = cases(0.25 if args.quick else 1.0)
    chosen = [all_cases[int(i) - 1] for i in args.only.split(",")] if args.only else all_cases
    blobs = models()
    build_loadgen()
    ours = ServerProcess("--save", "", "--appendonly", "no", "--THREADS_PER_QUEUE", "1", "--INTRA_OP_PARALLELISM", "1",
                         "--INTER_OP_PARALLELISM", "1", *args.server_args, cwd=tempfile.mkdtemp(prefix="bench-ours-")).start()
    theirs = RedisAIPeer(peer)
    other = None
    if args.other:
        other = ServerProcess("--save", "", "--appendonly", "no", "--THREADS_PER_QUEUE", "1", "--INTRA_OP_PARALLELISM", "1",
                              "--INTER_OP_PARALLELISM", "1", *args.server_args, env={"PYTHONPATH": args.other},
                              cwd=tempfile.mkdtemp(prefix="bench-other-")).start()
    rows = [Row(c) for c in chosen]
    limit: list[float] = []
    load_before = os.getloadavg()
    try:
        load_models(ours.port, blobs)
        load_models(theirs.port, blobs)
        if other is not None:
            load_models(other.port, blobs)
        same_outputs([ours.port, theirs.port], blobs)
        for c in chosen:  # warm-up: first runs, backends' lazy set-up, the inline judgement settles
            servers = [(ours.port, ours.pid), (theirs.port, theirs.pid)] + ([(other.port, other.pid)] if other else [])
            for port, pid in servers:
                redis_benchmark(port, Case(c.label, c.clients, max(500, c.requests // 20), c.model), pid)
        for rep in range(args.repeat):
            for row in rows:
                if row.case.model == "big_onnx_b32":
                    limit.append(in_process_batched_rows_per_s(blobs["big_onnx"][1], 3.0 if not args.quick else 1.5))
                sides = [("ours", ours.port, ours.pid), ("theirs", theirs.port, theirs.pid)]
                if other is not None:
                    sides.append(("other", other.port, other.pid))
                sides = sides[rep % len(sides):] + sides[:rep % len(sides)]  # each side leads in turn
                for name, port, pid in sides:
                    s = measure(port, pid, row.case)
                    getattr(row, name).append(s)
                    print(f"rep {rep + 1} {name:6} {row.case.label:28} c={row.case.clients:<3} {s.rps:>10,.0f}/s "
                          f"p50={s.p50_us:.0f}us cpu={s.cpu_us:.1f}us/req"
                          + (f" exact p50={s.exact_p50_us:.1f}us" if s.exact_p50_us else ""), flush=True)
    finally:
        ours.stop()
        theirs.stop()
        if other is not None:
            other.stop()
    load_after = os.getloadavg()
    m = machine()
    info = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], check=False, capture_output=True, text=True).stdout.strip()
    also = f" The other build (--other): {args.other}." if args.other else ""
    head = (f"Measured {m['date']} on {m['cpu']}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
            f"redisai-fast {m['redisai-fast']} (commit {info[:60]}), RedisAI 1.2.7 in {m['redis-server']} ({peer}); "
            f"Python {m['python']}. Median of {args.repeat} interleaved repeats, spread in brackets; "
            f"ratios are redisai-fast / RedisAI per repeat.{also}")
    report = head + "\n\n" + table(rows, limit)
    print()
    print(report)
    day = dt.date.today().isoformat()
    out = Path(args.out) if args.out else ROOT / "benches" / "results" / f"redisai-{day}.txt"
    raw = {r.case.label + f" c={r.case.clients}": {"ours": [vars(s) for s in r.ours], "theirs": [vars(s) for s in r.theirs],
                                                    **({"other": [vars(s) for s in r.other]} if r.other else {})}
           for r in rows}
    out.write_text(report + "\n\nRaw samples:\n" + json.dumps({"in_process_rows_per_s": limit, **raw}, indent=1) + "\n")
    try:
        plot(rows, limit, out.with_suffix(".png"), head.split(";")[0])
        print(f"\nwrote {out} and {out.with_suffix('.png')}")
    except ImportError:
        print(f"\nwrote {out} (no plot: matplotlib is not installed; scripts/dev.sh bench installs it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
