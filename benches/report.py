"""The benchmark report: `benches/results/report-<date>.md` with each suite's tables, the machine,
the versions and the commands that produced them, and PNG charts (matplotlib, the `bench` extra):
throughput against clients for tensors and models with redis-server beside us (and RedisAI where
its results are present), p50/p99 latency bars, and the TLS rows."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

OURS, REDIS, REDISAI = "#1f77b4", "#d62728", "#2ca02c"


def _versions() -> dict[str, str]:
    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30).stdout.strip()
        except OSError:
            return "not installed"

    v = {"python": platform.python_version(), "rustc": out("rustc", "--version"),
         "redis-server": out("redis-server", "--version").split(" sha=")[0]}
    from importlib import metadata

    for dist in ("redisai-fast", "numpy", "uvloop", "torch", "onnxruntime", "tensorflow-cpu", "ai-edge-litert", "matplotlib"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            v[dist] = "not installed"
    return v


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart_tensors(rows: list[dict], out: Path) -> Path | None:
    """Ops/s against clients, 4 KiB payloads without pipelining: TENSORSET/GET and SET/GET."""
    picked = [r for r in rows if r["payload"] == "4 KiB" and r["pipeline"] == 1]
    if not picked:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, op in zip(axes, ("TENSORSET vs SET", "TENSORGET vs GET")):
        mine = sorted((r["clients"], r["ours"], r["redis"]) for r in picked if r["op"] == op)
        if not mine:
            continue
        clients = [m[0] for m in mine]
        ax.plot(clients, [m[1] for m in mine], "o-", color=OURS, label=f"redisai-fast AI.{op.split()[0]}")
        ax.plot(clients, [m[2] for m in mine], "s--", color=REDIS, label=f"redis-server {op.split()[-1]}")
        ax.set_xscale("log")
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("clients")
        ax.set_title(f"4 KiB {op}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("operations per second")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def chart_models(rows: list[dict], out: Path, redisai: list[dict] | None) -> Path | None:
    """Requests/s against clients per backend, unbatched and BATCHSIZE 32 (RedisAI dashed where measured)."""
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {("ONNX", 0): ("o-", OURS), ("ONNX", 32): ("o:", OURS), ("TORCH", 0): ("^-", "#9467bd"),
              ("TORCH", 32): ("^:", "#9467bd")}
    for (backend, batch), (marker, color) in styles.items():
        mine = sorted((r["clients"], r["rps"]) for r in rows if r["backend"] == backend and r["batchsize"] == batch)
        if mine:
            ax.plot([m[0] for m in mine], [m[1] for m in mine], marker, color=color,
                    label=f"redisai-fast {backend}" + (f" BATCHSIZE {batch}" if batch else ""))
    if redisai:
        for backend in sorted({r["backend"] for r in redisai}):
            pts = sorted((r["clients"], r["rps"]) for r in redisai if r["backend"] == backend and r["batchsize"] == 0)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", color=REDISAI, label=f"RedisAI 1.2.7 {backend}")
    clients = sorted({r["clients"] for r in rows})
    ax.set_xscale("log")
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("clients")
    ax.set_ylabel("AI.MODELEXECUTE requests per second")
    ax.set_title("MLP 256→512→10, one row per request")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def chart_latency(rows: list[dict], out: Path) -> Path | None:
    """p50 and p99 bars per backend, batching and clients."""
    if not rows:
        return None
    plt = _plt()
    labels = [f"{r['backend']}\n{'b32' if r['batchsize'] else 'b0'} c{r['clients']}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(7, len(rows) * 0.8), 4.5))
    ax.bar([i - 0.2 for i in x], [r["p50_us"] for r in rows], 0.4, color=OURS, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p99_us"] for r in rows], 0.4, color="#ff7f0e", label="p99")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("latency, µs (log scale)")
    ax.set_title("AI.MODELEXECUTE latency (redis-benchmark percentiles)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def chart_tls(rows: list[dict], out: Path) -> Path | None:
    """Ops/s over TLS, ours beside redis-server's, per case."""
    if not rows:
        return None
    plt = _plt()
    labels = [f"{r['op'].split()[0]}\n{r['clients']} client{'s' if r['clients'] > 1 else ''}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([i - 0.2 for i in x], [r["ours"] for r in rows], 0.4, color=OURS, label="redisai-fast (AI.TENSORSET/GET)")
    ax.bar([i + 0.2 for i in x], [r["redis"] for r in rows], 0.4, color=REDIS, label="redis-server (SET/GET)")
    for i, r in zip(x, rows):
        ax.text(i, max(r["ours"], r["redis"]) * 1.02, f"{r['ours'] / r['redis']:.2f}x", ha="center", fontsize=8)
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("operations per second")
    ax.set_title("4 KiB payloads over TLS")
    ax.set_ylim(0, max(max(r["ours"], r["redis"]) for r in rows) * 1.15)
    ax.grid(True, axis="y", alpha=0.3)
    fig.legend(fontsize=8, loc="lower center", ncol=2)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def saved_runs(date: str, results: Path = RESULTS) -> list[dict]:
    """The runs `benches/run.py` saved for `date` (bench-<suite>-<date>.json), in suite order."""
    order = ["tensors", "models", "dag", "persistence", "tls"]
    runs = [json.loads(p.read_text()) for p in results.glob(f"bench-*-{date}.json")]
    return sorted(runs, key=lambda r: order.index(r["suite"]) if r["suite"] in order else len(order))


def write_report(date: str, runs: list[dict], results: Path = RESULTS) -> Path:
    """`runs`: per suite, {"suite", "command", "output" (its stdout), "json" (its rows or None)}."""
    results.mkdir(parents=True, exist_ok=True)
    by_suite = {r["suite"]: r for r in runs}
    charts: list[tuple[str, Path]] = []
    rows = lambda s: (by_suite.get(s, {}).get("json") or {}).get("rows") or []
    redisai_file = results / "redisai-models.json"
    redisai = json.loads(redisai_file.read_text())["rows"] if redisai_file.exists() else None
    for title, path in (
        ("Tensors: throughput against clients", chart_tensors(rows("tensors"), results / f"chart-tensors-{date}.png")),
        ("Models: throughput against clients", chart_models(rows("models"), results / f"chart-models-{date}.png", redisai)),
        ("Models: p50 / p99 latency", chart_latency(rows("models"), results / f"chart-latency-{date}.png")),
        ("TLS: 4 KiB against redis-server", chart_tls(rows("tls"), results / f"chart-tls-{date}.png")),
    ):
        if path is not None:
            charts.append((title, path))
    machine = next((r["json"]["machine"] for r in runs if r.get("json")), {})
    lines = [f"# Benchmark report {date}", ""]
    lines += ["## Machine and versions", ""]
    for k, v in {**machine, **_versions()}.items():
        lines.append(f"- {k}: {v}")
    lines += ["", ("Every number is a median of interleaved runs side by side with redis-server in the same run, on a "
              "machine shared with other work: compare ratios, not absolute numbers across reports."), ""]
    if not redisai:
        lines += [("RedisAI 1.2.7 was not measured in this run (no `benches/results/redisai-models.json`): its "
                  "line is absent from the model chart."), ""]
    if charts:
        lines += ["## Charts", ""]
        for title, path in charts:
            lines += [f"### {title}", "", f"![{title}]({path.name})", ""]
    for r in runs:
        lines += [f"## {r['suite']}", "", f"Command: `{r['command']}`", ""]
        table = []
        for ln in r["output"].splitlines():
            if ln.startswith("|"):
                table.append(ln)
            elif ln.startswith("Measured"):
                table += ["", ln, ""]  # markdown needs a blank line before a table
        lines += table or ["(no table: see the suite's output)"]
        lines.append("")
    out = results / f"report-{date}.md"
    out.write_text("\n".join(lines))
    return out


if __name__ == "__main__":
    import sys

    day = sys.argv[1] if len(sys.argv) > 1 else __import__("datetime").date.today().isoformat()
    print(write_report(day, saved_runs(day)))
