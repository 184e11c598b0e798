"""Model benchmark: AI.MODELEXECUTE latency (p50/p99) and throughput for a small MLP in ONNX and
TorchScript, 1/8/32 clients, without and with BATCHSIZE 32, against calling the same framework
in-process. Driven by redis-benchmark; the 1-client latencies again with benches/loadgen, whose
percentiles are exact to the µs (redis-benchmark's are rounded to 8 µs at this scale). Prints
markdown tables."""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import time

import numpy as np
import redis
from common import LOADGEN, RedisServer, ServerProcess, build_loadgen, machine, write_json

IN, HIDDEN, OUT = 256, 512, 10


def mlp_weights():
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((IN, HIDDEN)) / 16).astype(np.float32)
    b1 = np.zeros(HIDDEN, np.float32)
    w2 = (rng.standard_normal((HIDDEN, OUT)) / 16).astype(np.float32)
    b2 = np.zeros(OUT, np.float32)
    return w1, b1, w2, b2


def onnx_mlp() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    w1, b1, w2, b2 = mlp_weights()
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUT])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def torch_mlp() -> bytes:
    import torch

    w1, b1, w2, b2 = mlp_weights()

    class Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = torch.nn.Parameter(torch.from_numpy(w1), requires_grad=False)
            self.b1 = torch.nn.Parameter(torch.from_numpy(b1), requires_grad=False)
            self.w2 = torch.nn.Parameter(torch.from_numpy(w2), requires_grad=False)
            self.b2 = torch.nn.Parameter(torch.from_numpy(b2), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Mlp()), buf)
    return buf.getvalue()


def in_process_us(backend: str, blob: bytes, n: int) -> tuple[float, float, float]:
    """p50/p99 of one call in a hot loop, the way a Python program would call the framework itself,
    and the p50 when the calls are 100 µs apart (caches and branch predictors go cold in between,
    as they do in a server between one client's requests)."""
    x = np.random.default_rng(1).standard_normal((1, IN)).astype(np.float32)
    if backend == "ONNX":
        import onnxruntime as ort

        so = ort.SessionOptions()  # one thread per run, as the server runs it
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])

        def call():
            s.run(None, {"x": x})
    else:
        import torch

        torch.set_num_threads(1)  # as the server runs it
        m = torch.jit.load(io.BytesIO(blob))
        t = torch.from_numpy(x)

        def call():
            with torch.inference_mode():
                m(t).numpy()
    for _ in range(200):
        call()
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    paused = []
    for _ in range(min(n, 5000)):
        time.sleep(0.0001)
        t0 = time.perf_counter_ns()
        call()
        paused.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(times), times[int(len(times) * 0.99)], statistics.median(paused)


def bench(port: int, clients: int, n: int, cmd: list[str]) -> dict[str, float]:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "--csv", *cmd],
                         capture_output=True, text=True, check=True, timeout=600)
    row = list(csv.reader(io.StringIO(out.stdout)))[1]
    return {"rps": float(row[1]), "p50_us": float(row[4]) * 1000, "p99_us": float(row[6]) * 1000}


def loadgen_p50(port: int, words: list[str], n: int) -> float:
    """p50 in µs of `words` sent by one client, one at a time (benches/loadgen)."""
    out = subprocess.run([str(LOADGEN), "--port", str(port), "--clients", "1", "--requests", str(n), "--command", " ".join(words)],
                         capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout)["batch_p50_us"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("server_args", nargs="*", help="extra server options, e.g. -- --busy-poll-us 0")
    args = ap.parse_args()
    n = 20000 if args.quick else 60000
    blobs = {"ONNX": onnx_mlp(), "TORCH": torch_mlp()}
    build_loadgen()
    redis_server = RedisServer()
    try:
        redis_ping = loadgen_p50(redis_server.port, ["PING"], n)
    finally:
        redis_server.stop()
    server = ServerProcess(*args.server_args).start()
    rows = []
    exact = {}
    try:
        r = redis.Redis(port=server.port, protocol=2)
        x = np.random.default_rng(1).standard_normal((1, IN)).astype(np.float32)
        r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, IN, "BLOB", x.tobytes())
        ping = bench(server.port, 1, n, ["PING"])
        our_ping = loadgen_p50(server.port, ["PING"], n)
        for backend, blob in blobs.items():
            local50, _p99, paused50 = in_process_us(backend, blob, n // 4)
            for batch in (0, 32):
                key = f"{backend}_{batch}"
                extra = ["BATCHSIZE", str(batch)] if batch else []
                r.execute_command("AI.MODELSTORE", key, backend, "CPU", *extra, "BLOB", blob)
                cmd = ["AI.MODELEXECUTE", key, "INPUTS", "1", "x", "OUTPUTS", "1", "y"]
                bench(server.port, 8, 2000, cmd)  # warm up (and let the inline decision settle)
                if batch == 0:
                    exact[backend] = (loadgen_p50(server.port, cmd, n), local50)
                for clients in (1, 8, 32):
                    res = bench(server.port, clients, n, cmd)
                    rows.append((backend, batch, clients, res, local50, paused50))
                    print(f"{backend:5} batch={batch:<2} c={clients:<2} {res['rps']:>9,.0f}/s p50={res['p50_us']:.0f}us "
                          f"p99={res['p99_us']:.0f}us (in-process p50 {local50:.1f}us, {paused50:.1f}us with pauses)", flush=True)
    finally:
        server.stop()
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; redisai-fast {m['redisai-fast']}, Python {m['python']}. "
          f"MLP {IN}->{HIDDEN}->{OUT}, one row per request. PING round trip at 1 client: p50 {ping['p50_us']:.0f} us.")
    print()
    print("| backend | BATCHSIZE | clients | req/s | p50 µs | p99 µs | in-process p50 µs: hot / 100 µs apart "
          "| p50 − in-process (hot) µs | p50 − PING − in-process (hot) µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend, batch, clients, res, l50, p50 in rows:
        print(f"| {backend} | {batch} | {clients} | {res['rps']:,.0f} | {res['p50_us']:.0f} | {res['p99_us']:.0f} | "
              f"{l50:.1f} / {p50:.1f} | {res['p50_us'] - l50:.0f} | {res['p50_us'] - ping['p50_us'] - l50:.0f} |")
    print()
    print(f"1 client, exact p50 (benches/loadgen): PING {our_ping:.1f} µs (redis-server {redis_ping:.1f} µs).")
    print()
    print("| backend | MODELEXECUTE p50 µs | in-process p50 µs (hot) | p50 − in-process µs | p50 − PING − in-process µs |")
    print("|---|---:|---:|---:|---:|")
    for b, (p50, l50) in exact.items():
        print(f"| {b} | {p50:.1f} | {l50:.1f} | {p50 - l50:.1f} | {p50 - our_ping - l50:.1f} |")
    unb = {(b, c): res["rps"] for b, bs, c, res, _, _ in rows if bs == 0}
    bat = {(b, c): res["rps"] for b, bs, c, res, _, _ in rows if bs == 32}
    print()
    for b in blobs:
        print(f"{b}: batching speed-up at 32 clients: {bat[(b, 32)] / unb[(b, 32)]:.2f}x")
    write_json("models", m, [{"backend": b, "batchsize": bs, "clients": c, "rps": res["rps"], "p50_us": res["p50_us"],
                              "p99_us": res["p99_us"], "in_process_p50_us": l50} for b, bs, c, res, l50, _ in rows])


if __name__ == "__main__":
    main()
