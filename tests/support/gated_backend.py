"""A backend adapter for the in-process tests (`AI.CONFIG LOADBACKEND <name>
tests.support.gated_backend`): a run records the thread it runs on, then waits until the test
opens `GATE`, and returns its input times two."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

ENTERED = threading.Event()
GATE = threading.Event()
RAN_ON: list[str] = []


def reset() -> None:
    ENTERED.clear()
    GATE.clear()
    RAN_ON.clear()


class GatedModel:
    def __init__(self) -> None:
        self.input_names = ["x"]
        self.output_names = ["y"]

    def run(self, inputs: list[Any]) -> list[Any]:
        RAN_ON.append(threading.current_thread().name)
        ENTERED.set()
        if not GATE.wait(60):
            raise RuntimeError("the test never opened the gate")
        return [np.asarray(inputs[0]) * 2]


class GatedBackend:
    name = "GATED"

    def version(self) -> str:
        return "1"

    def load(self, blob: Any, device: Any, inputs: list[str], outputs: list[str]) -> GatedModel:
        return GatedModel()


def create(options: Any) -> GatedBackend:
    return GatedBackend()
