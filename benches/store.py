"""Store mode benchmarks: `python benches/store.py [--part overhead|scaling] [--quick]`.

overhead: one node in front of a Valkey store on this machine against the embedded keyspace, same
    load side by side (benches/loadgen): AI.TENSORSET/TENSORGET at 4 KiB and 256 KiB with 1 and 50
    clients, and MODELEXECUTE of a tiny ONNX model. Ratios, medians of interleaved repeats, and
    the 1-client p50s (the store round trip's cost is their difference).
scaling: 1, 2 and 4 nodes over one store, each node's CPU capped with a cgroup v1 quota (40% of a
    core), a compute-bound model, aggregate MODELEXECUTE throughput against N x one node's; writes
    a PNG chart next to the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import redis
from common import LOADGEN, ROOT, ServerProcess, build_loadgen, machine

sys.path.insert(0, str(ROOT))
from tests.support.store import StoreNode, valkey_server

RESULTS = ROOT / "benches" / "results"
CGROUP = Path("/sys/fs/cgroup/cpu")


def loadgen(port: int, args: list[str]) -> dict:
    out = subprocess.run([str(LOADGEN), "--port", str(port), *args], capture_output=True, text=True, check=True, timeout=900)
    return json.loads(out.stdout)


def tiny_onnx() -> bytes:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((4, 8)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor("w1", TensorProto.FLOAT, [4, 8], w1.ravel()), helper.make_tensor("w2", TensorProto.FLOAT, [8, 3], w2.ravel())],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def mlp_onnx(width: int = 1024, depth: int = 4, inputs: int = 256, outputs: int = 16) -> bytes:
    """A compute-bound MLP (inputs -> depth x width -> outputs)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    nodes, inits, prev, dim = [], [], "x", inputs
    for i in range(depth):
        w = (rng.standard_normal((dim, width)) / np.sqrt(dim)).astype(np.float32)
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, list(w.shape), w.ravel()))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]), helper.make_node("Relu", [f"h{i}"], [f"r{i}"])]
        prev, dim = f"r{i}", width
    w = (rng.standard_normal((dim, outputs)) / np.sqrt(dim)).astype(np.float32)
    inits.append(helper.make_tensor("wo", TensorProto.FLOAT, list(w.shape), w.ravel()))
    nodes.append(helper.make_node("MatMul", [prev, "wo"], ["y"]))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", inputs])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def median_spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}-{max(xs):,.0f})"


def overhead(quick: bool, repeat: int) -> str:
    build_loadgen()
    store = StoreNode(valkey_server() or "redis-server").start()
    emb = ServerProcess("--save", "").start()
    node = ServerProcess("--store", store.url, "--save", "").start()
    # a second store of the same build, for the SET/GET round trip alone (its keys stay out of the node's)
    bare = StoreNode(valkey_server() or "redis-server").start()
    lines = []
    try:
        for port in (emb.port, node.port):
            r = redis.Redis(port=port, protocol=2)
            r.execute_command("AI.MODELSTORE", "tiny", "ONNX", "CPU", "BLOB", tiny_onnx())
            x = np.ones((1, 4), dtype=np.float32)
            r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
        n_small = 10000 if quick else 40000
        n_big = 1000 if quick else 4000
        cases = []
        for size, n in ((4096, n_small), (262144, n_big)):
            for clients in (1, 50):
                for op in ("tensorset", "tensorget"):
                    cases.append((f"AI.{op.upper()} {size // 1024} KiB, {clients} client{'s' * (clients > 1)}",
                                  ["--op", op, "--size", str(size), "--clients", str(clients), "--requests", str(n), "--keyspace", "100"]))
        for clients in (1, 50):
            cases.append((f"MODELEXECUTE tiny ONNX, {clients} client{'s' * (clients > 1)}",
                          ["--clients", str(clients), "--requests", str(n_small // 2), "--command", "AI.MODELEXECUTE tiny INPUTS 1 x OUTPUTS 1 y"]))
        lines.append("| case | embedded ops/s | store ops/s | store / embedded | 1-client p50 µs (embedded / store) | the store's own SET/GET p50 µs |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name, args in cases:
            e, s, ep, sp, rt = [], [], [], [], []
            one = " 1 client" in name
            # the same bytes straight to the store at one client: the round trip a store-mode command adds
            direct = (["--op", args[1][len("tensor"):], *args[2:]] if one and "--op" in args else None)
            if "tensorget" in args:  # every key the GETs read exists (loadgen's --preload writes them)
                for port in (emb.port, node.port):
                    loadgen(port, ["--op", "tensorget", "--size", args[args.index("--size") + 1], "--requests", "1",
                                   "--keyspace", "100", "--preload"])
            for _ in range(repeat):
                a = loadgen(emb.port, args)
                b = loadgen(node.port, args)
                e.append(a["ops_per_sec"])
                s.append(b["ops_per_sec"])
                ep.append(a["batch_p50_us"])
                sp.append(b["batch_p50_us"])
                if direct is not None:
                    if "get" in direct and not rt:
                        loadgen(bare.port, [*direct[:4], "--requests", "1", "--keyspace", "100", "--preload"])
                    rt.append(loadgen(bare.port, direct)["batch_p50_us"])
            ratio = statistics.median(s) / statistics.median(e)
            p50 = f"{statistics.median(ep):.1f} / {statistics.median(sp):.1f}" if one else ""
            own = f"{statistics.median(rt):.1f}" if rt else ""
            lines.append(f"| {name} | {median_spread(e)} | {median_spread(s)} | {ratio:.2f} | {p50} | {own} |")
            print(lines[-1], flush=True)
    finally:
        node.stop()
        emb.stop()
        store.kill()
        bare.kill()
    return "\n".join(lines)


class Quota:
    """A cgroup v1 `cpu` group capping a process at `share` of one core."""

    def __init__(self, pid: int, share: float) -> None:
        self.path = CGROUP / f"redisai-fast-bench-{os.getpid()}-{pid}"
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text("100000")
        (self.path / "cpu.cfs_quota_us").write_text(str(int(100000 * share)))
        (self.path / "cgroup.procs").write_text(str(pid))

    def close(self, pid: int) -> None:
        try:
            (CGROUP / "cgroup.procs").write_text(str(pid))
        except OSError:
            pass  # the process is gone
        self.path.rmdir()


def drive(port: int, requests: int, into: list[dict]) -> None:
    """One node's closed-loop load (4 clients); its result is appended to `into` (a list's append
    is atomic)."""
    into.append(loadgen(port, ["--clients", "4", "--requests", str(requests), "--command",
                               f"AI.MODELEXECUTE mlp INPUTS 1 x OUTPUTS 1 y{port}"]))


def scaling(quick: bool, repeat: int, share: float) -> tuple[str, list[tuple[int, float]]]:
    if not (CGROUP / "cpu.cfs_quota_us").exists() or os.geteuid() != 0:
        return "skipped: needs root and the cgroup v1 cpu controller (/sys/fs/cgroup/cpu)", []
    build_loadgen()
    store = StoreNode(valkey_server() or "redis-server").start()
    blob = mlp_onnx()
    x = np.random.default_rng(2).standard_normal((1, 256)).astype(np.float32)
    s = store.client()
    results: dict[int, list[float]] = {}
    nodes: list[tuple[ServerProcess, Quota]] = []
    try:
        first = ServerProcess("--store", store.url, "--save", "", "--busy-poll-us", "0").start()
        r = redis.Redis(port=first.port, protocol=2)
        r.execute_command("AI.MODELSTORE", "mlp", "ONNX", "CPU", "BLOB", blob)
        r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 256, "BLOB", x.tobytes())
        nodes.append((first, Quota(first.pid, share)))
        requests = 400 if quick else 1500
        for n in (1, 2, 4):
            while len(nodes) < n:
                p = ServerProcess("--store", store.url, "--save", "", "--busy-poll-us", "0").start()
                nodes.append((p, Quota(p.pid, share)))
            for p, _ in nodes[:n]:  # each node compiles the model once before it is timed
                redis.Redis(port=p.port, protocol=2).execute_command("AI.MODELEXECUTE", "mlp", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{p.port}")
            for _ in range(repeat):
                out: list[dict] = []
                threads = [threading.Thread(target=drive, args=(p.port, requests, out)) for p, _ in nodes[:n]]
                t0 = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.monotonic() - t0
                results.setdefault(n, []).append(sum(o["requests"] for o in out) / wall)
            print(f"{n} node(s): {median_spread(results[n])} runs/s", flush=True)
    finally:
        for p, q in nodes:
            p.stop()
            q.close(p.pid)
        store.kill()
        s.close()
    one = statistics.median(results[1])
    lines = ["| nodes | aggregate MODELEXECUTE/s | x one node | target (0.9 x N) |", "|---:|---:|---:|---:|"]
    points = []
    for n in sorted(results):
        med = statistics.median(results[n])
        points.append((n, med))
        lines.append(f"| {n} | {median_spread(results[n])} | {med / one:.2f} | {0.9 * n:.1f} |")
    return "\n".join(lines), points


def chart(points: list[tuple[int, float]], path: Path, share: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [n for n, _ in points]
    got = [v for _, v in points]
    one = got[0]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(ns, [one * n for n in ns], "--", color="grey", label="N x one node")
    ax.plot(ns, [0.9 * one * n for n in ns], ":", color="grey", label="target 0.9 x N")
    ax.plot(ns, got, "o-", color="tab:blue", label="measured")
    ax.set_xticks(ns)
    ax.set_xlabel("redisai-fast nodes over one Valkey store")
    ax.set_ylabel("aggregate MODELEXECUTE / s")
    ax.set_title(f"Store mode scaling, each node capped at {share:.0%} of a core")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["overhead", "scaling", "all"], default="all")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--share", type=float, default=0.25,
                    help="each node's CPU quota, in cores (scaling; 4 nodes then use one of the two cores, the store and the load the other)")
    args = ap.parse_args()
    m = machine()
    load = os.getloadavg()
    report = [f"# Store mode benchmarks, {m['date']}", "",
              f"machine: {m['cpu']}; load average at start {load[0]:.1f}; {m['redis-server']}; redisai-fast {m['redisai-fast']}",
              f"command: `.venv/bin/python benches/store.py --part {args.part} --repeat {args.repeat}{' --quick' if args.quick else ''}`", ""]
    stamp = time.strftime("%Y-%m-%d")
    if args.part in ("overhead", "all"):
        report += ["## One node over a local store against the embedded keyspace", "", overhead(args.quick, args.repeat), ""]
    if args.part in ("scaling", "all"):
        table, points = scaling(args.quick, args.repeat, args.share)
        report += [f"## Scaling: nodes capped at {args.share:.0%} of a core each", "", table, ""]
        if points:
            png = RESULTS / f"store-scaling-{stamp}.png"
            chart(points, png, args.share)
            report.append(f"chart: {png.relative_to(ROOT)}")
    text = "\n".join(report) + "\n"
    print(text)
    out = RESULTS / f"store-{args.part}-{stamp}.txt"
    out.write_text(text)
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
