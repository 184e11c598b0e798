"""A short GPU benchmark (scripts/gpu-check.sh runs it on a machine with CUDA): a TorchScript MLP
256 -> 1024 -> 1024 -> 16 stored on GPU:0, AI.MODELEXECUTE of 1-row and 32-row requests from one
client, and 1-row requests from 32 clients batched by the server (BATCHSIZE 32), next to the same
module called in-process by torch on the same GPU (host input in, host output out, as the server
does; and the GPU-only time for reference). Stdlib clients only: the GPU machine has no
redis-benchmark. Prints a markdown table and writes it to --out.

    python benches/gpu.py [--seconds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.models import torch_mlp
from tests.support.server import ServerProcess

SIZES = (256, 1024, 1024, 16)


def command(*words: bytes | str) -> bytes:
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        b = w.encode() if isinstance(w, str) else w
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def read_reply(sock: socket.socket, buf: bytearray) -> bytes:
    """One simple reply line (+OK or -error)."""
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    if line.startswith(b"-"):
        raise RuntimeError(line[1:].decode())
    return line


def one_client(port: int, cmd: bytes, seconds: float) -> tuple[float, float, float]:
    """p50 and p99 latency in µs, and requests/s, of `cmd` sent one at a time."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    for _ in range(200):
        sock.sendall(cmd)
        read_reply(sock, buf)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        sock.sendall(cmd)
        read_reply(sock, buf)
        times.append((time.perf_counter_ns() - t0) / 1000)
    sock.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)], len(times) / seconds


async def many_clients(port: int, cmd: bytes, clients: int, seconds: float) -> float:
    """Requests/s of `clients` connections each sending `cmd` one at a time (closed loop)."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            writer.write(cmd)
            line = await reader.readline()
            if line.startswith(b"-"):
                raise RuntimeError(line.decode())
            done += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


def in_process(blob: bytes, rows: int, seconds: float) -> tuple[float, float]:
    """p50 µs of the module on GPU:0 with host input and output, and with both on the GPU."""
    import torch

    m = torch.jit.load(io.BytesIO(blob), map_location="cuda:0").eval()
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((rows, SIZES[0])).astype(np.float32))
    xg = x.cuda()

    def host() -> None:
        m(x.to("cuda:0", non_blocking=True)).cpu().numpy()

    def gpu() -> None:
        m(xg)
        torch.cuda.synchronize()

    out = []
    with torch.no_grad():
        for f in (host, gpu):
            for _ in range(100):
                f()
            times = []
            end = time.perf_counter() + seconds / 2
            while time.perf_counter() < end:
                t0 = time.perf_counter_ns()
                f()
                times.append((time.perf_counter_ns() - t0) / 1000)
            out.append(statistics.median(times))
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", help="also write the report here")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu benchmark skipped: torch sees no CUDA device")
        return 0
    blob = torch_mlp(SIZES, 0)
    rng = np.random.default_rng(2)
    lines = []
    with ServerProcess("--save", "") as s:
        sock = socket.create_connection(("127.0.0.1", s.port))
        buf = bytearray()
        for words in (("AI.MODELSTORE", "m", "TORCH", "GPU:0", "BLOB", blob),
                      ("AI.MODELSTORE", "mb", "TORCH", "GPU:0", "BATCHSIZE", "32", "BLOB", blob),
                      ("AI.TENSORSET", "x1", "FLOAT", "1", str(SIZES[0]), "BLOB",
                       rng.standard_normal((1, SIZES[0])).astype(np.float32).tobytes()),
                      ("AI.TENSORSET", "x32", "FLOAT", "32", str(SIZES[0]), "BLOB",
                       rng.standard_normal((32, SIZES[0])).astype(np.float32).tobytes())):
            sock.sendall(command(*words))
            read_reply(sock, buf)
        sock.close()
        rows = []
        for batch, key in ((1, "x1"), (32, "x32")):
            p50, p99, rps = one_client(s.port, command("AI.MODELEXECUTE", "m", "INPUTS", "1", key, "OUTPUTS", "1", "y"), args.seconds)
            host, gpu_only = in_process(blob, batch, args.seconds)
            rows.append(f"| {batch}-row requests, 1 client | {p50:.0f} / {p99:.0f} | {rps * batch:,.0f} | {host:.0f} | {gpu_only:.0f} | "
                        f"{p50 / host:.2f} |")
        rps = asyncio.run(many_clients(s.port, command("AI.MODELEXECUTE", "mb", "INPUTS", "1", "x1", "OUTPUTS", "1", "y"), 32, args.seconds))
        host32, gpu32 = in_process(blob, 32, args.seconds)
        rows.append(f"| 1-row requests, 32 clients, BATCHSIZE 32 | | {rps:,.0f} | {host32:.0f} (32 rows) | {gpu32:.0f} (32 rows) | |")
    gpu_name = torch.cuda.get_device_name(0)
    lines = [(f"GPU benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {gpu_name}, torch {torch.__version__}, "
             f"Python {platform.python_version()}; TorchScript MLP {' -> '.join(map(str, SIZES))} on GPU:0; "
             f"stdlib clients ({args.seconds:.0f} s a row)."), "",
             ("| case | server p50 / p99 µs | rows/s | in-process p50 µs (host in/out) | in-process p50 µs (GPU only) "
             "| server p50 / in-process |"),
             "|---|---:|---:|---:|---:|---:|", *rows, "",
             "The 32-client row is bound by the Python client (one asyncio thread), not by the server."]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
