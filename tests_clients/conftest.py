"""Fixtures for the official-clients suite (runs in .venv-clients with redisai-py and SmartRedis)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess  # noqa: E402


@pytest.fixture(scope="session")
def server():
    with ServerProcess() as s:
        yield s
