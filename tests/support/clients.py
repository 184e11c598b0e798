"""Test clients run side by side in threads, with any exception one raises raised in the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_clients(n: int, client: Callable[[int], None], timeout: float = 120) -> None:
    """Runs `client(0)` … `client(n - 1)` at once, each in its own thread, and waits for all of them
    (at most `timeout` seconds in all). Fails if one is still running then; re-raises the first
    exception a client raised."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            client(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"a client was still running after {timeout} s"
    if errors:
        raise errors[0]
