"""In-process: what happens between two calls of the TorchScript adapter makes the next call slower.
Explains why a 1-client MODELEXECUTE run takes longer in the server than in a hot loop (README,
Models). No server involved: `.venv/bin/python benches/cold_cache.py`."""

from __future__ import annotations

import select
import socket
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from models import IN, torch_mlp
from redisai_fast import _core
from redisai_fast.backends import Device, Options
from redisai_fast.backends import torch as torch_backend


def median_us(call: Callable[[], object], between: Callable[[], object], n: int = 5000) -> float:
    for _ in range(300):
        call()
    times = []
    for _ in range(n):
        between()
        t0 = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def spin(seconds: float, step: Callable[[], object] = lambda: None) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        step()


def main() -> None:
    torch.set_num_threads(1)
    model = torch_backend.create(Options()).load(torch_mlp(), Device.parse("CPU"), [], [])
    view = _core.tensor_view(np.random.default_rng(1).standard_normal((1, IN)).astype(np.float32))

    def call() -> object:
        return model.run([view])

    ep = select.epoll()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def same_thread_round_trip() -> None:
        client.send(b"x" * 100)
        server.recv(1000)
        server.send(b"y" * 100)
        client.recv(1000)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("back to back", lambda: None),
        ("50 us of Python spinning", lambda: spin(50e-6)),
        ("50 us of epoll(0) polling", lambda: spin(50e-6, lambda: ep.poll(0))),
        ("TCP round trip, same thread", same_thread_round_trip),
        ("sleep 100 us", lambda: time.sleep(100e-6)),
    ]
    for label, between in cases:
        print(f"{label:40} {median_us(call, between):6.1f} us")

    def echo() -> None:
        while data := server.recv(1000):
            server.send(data)

    threading.Thread(target=echo, daemon=True).start()

    def other_thread_round_trip() -> None:
        client.send(b"x" * 100)
        client.recv(1000)

    print(f"{'TCP round trip through another thread':40} {median_us(call, other_thread_round_trip):6.1f} us")


if __name__ == "__main__":
    main()
