"""Fixtures for the official-clients suite (runs in .venv-clients with redisai-py and SmartRedis)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def server():
    with ServerProcess() as s:
        yield s


@pytest.fixture
def con(server):
    """A redisai-py client on an empty keyspace."""
    import redisai

    c = redisai.Client(port=server.port)
    c.flushall()
    return c


def _server_python() -> str:
    """The server venv's interpreter (it has the frameworks that generate the test models)."""
    import os

    env = os.environ.get("REDISAI_FAST_PYTHON")
    if env:
        return env
    return str(ROOT / ".venv" / "bin" / "python")


@pytest.fixture(scope="session")
def model_blob():
    """model_blob("onnx_linear") -> bytes, built by tests/support/models.py in the server venv."""
    import subprocess

    cache: dict[str, bytes] = {}

    def get(name: str) -> bytes:
        if name not in cache:
            code = (
                f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.support import models; "
                f"sys.stdout.buffer.write(getattr(models, {name!r})())"
            )
            out = subprocess.run([_server_python(), "-W", "ignore", "-c", code], capture_output=True, check=True, timeout=300)
            cache[name] = out.stdout
        return cache[name]

    return get
