"""DAG benchmark: the spec's image-classification pipeline (UINT8 224x224x3 image -> pre-processing
script -> classifier model -> post-processing script -> argmax) as one AI.DAGRUN_RO command
against the same steps sent as five separate commands (intermediates stored as keys). redis-py
clients in separate processes; prints pipelines/s, p50 latency and the ratio."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import redis
from common import ROOT, ServerProcess, machine  # noqa: F401

from tests.support import models


def dag_once(r: redis.Redis, image: bytes, i: int) -> None:
    res = r.execute_command(
        "AI.DAGRUN_RO", "|>", "AI.TENSORSET", "image", "UINT8", 224, 224, 3, "BLOB", image, "|>",
        "AI.SCRIPTRUN", "imagenet_script", "pre_process_3ch", "INPUTS", "image", "OUTPUTS", "temp_key1", "|>",
        "AI.MODELRUN", "imagenet_model", "INPUTS", "temp_key1", "OUTPUTS", "temp_key2", "|>",
        "AI.SCRIPTRUN", "imagenet_script", "post_process", "INPUTS", "temp_key2", "OUTPUTS", "output", "|>",
        "AI.TENSORGET", "output", "VALUES")
    assert res[4] == [models.IMAGENET_CLASS], res


def separate_once(r: redis.Redis, image: bytes, i: int) -> None:
    k = f"{{c{i}}}"
    r.execute_command("AI.TENSORSET", f"image{k}", "UINT8", 224, 224, 3, "BLOB", image)
    r.execute_command("AI.SCRIPTRUN", "imagenet_script", "pre_process_3ch", "INPUTS", f"image{k}", "OUTPUTS", f"t1{k}")
    r.execute_command("AI.MODELRUN", "imagenet_model", "INPUTS", f"t1{k}", "OUTPUTS", f"t2{k}")
    r.execute_command("AI.SCRIPTRUN", "imagenet_script", "post_process", "INPUTS", f"t2{k}", "OUTPUTS", f"out{k}")
    res = r.execute_command("AI.TENSORGET", f"out{k}", "VALUES")
    assert res == [models.IMAGENET_CLASS], res


def client(port: int, mode: str, n: int, i: int, q: mp.Queue) -> None:
    r = redis.Redis(port=port, protocol=2)
    image = models.image_224()
    fn = dag_once if mode == "dag" else separate_once
    for _ in range(5):
        fn(r, image, i)
    lat = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn(r, image, i)
        lat.append(time.perf_counter() - t0)
    q.put((time.perf_counter() - start, lat))


def run(port: int, mode: str, clients: int, n: int) -> tuple[float, float]:
    q: mp.Queue = mp.Queue()
    ps = [mp.Process(target=client, args=(port, mode, n, i, q)) for i in range(clients)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    wall = max(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    return clients * n / wall, statistics.median(lat) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 100 if args.quick else 400
    server = ServerProcess().start()
    rows = []
    try:
        r = redis.Redis(port=server.port, protocol=2)
        r.execute_command("AI.SCRIPTSET", "imagenet_script", "CPU", "SOURCE", models.IMAGENET_SCRIPT)
        r.execute_command("AI.MODELSET", "imagenet_model", "TORCH", "CPU", "BLOB", models.torch_classifier())
        for clients in (1, 8):
            dag_rate, dag_p50 = run(server.port, "dag", clients, n)
            sep_rate, sep_p50 = run(server.port, "separate", clients, n)
            rows.append((clients, dag_rate, dag_p50, sep_rate, sep_p50))
            print(f"c={clients}: DAG {dag_rate:,.0f}/s p50 {dag_p50:.0f}us | separate {sep_rate:,.0f}/s p50 {sep_p50:.0f}us "
                  f"| ratio {dag_rate / sep_rate:.2f}", flush=True)
    finally:
        server.stop()
    m = machine()
    print()
    print(f"Measured {m['date']} on {m['cpu']}; redisai-fast {m['redisai-fast']}. Image pipeline of the spec "
          "(224x224x3 UINT8, TorchScript pre/post-processing, TorchScript classifier), redis-py clients.")
    print()
    print("| clients | one DAGRUN_RO: pipelines/s | p50 µs | 5 separate commands: pipelines/s | p50 µs | DAG speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, dr, dp, sr, sp in rows:
        print(f"| {c} | {dr:,.0f} | {dp:.0f} | {sr:,.0f} | {sp:.0f} | {dr / sr:.2f}x |")


if __name__ == "__main__":
    main()
