"""Fixtures for the main suite: one shared server per session, fresh keyspace per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def server():
    """The shared server; with REDISAI_FAST_TEST_STORE=valkey|redis it runs in store mode in front
    of a standalone store of that kind (the suites that hold for both modes run it so in CI)."""
    kind = os.environ.get("REDISAI_FAST_TEST_STORE")
    if not kind:
        with ServerProcess() as s:
            yield s
        return
    from tests.support.store import STORE_SERVERS, StoreNode

    binary = STORE_SERVERS[kind]()
    if binary is None:
        pytest.fail(f"REDISAI_FAST_TEST_STORE={kind}: no such store server is installed")
    with StoreNode(binary) as store, ServerProcess("--store", store.url) as s:
        yield s


@pytest.fixture
def r(server: ServerProcess) -> redis.Redis:
    """A redis-py client (bytes replies) on a flushed server."""
    c = redis.Redis(port=server.port, protocol=2)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def r3(server: ServerProcess) -> redis.Redis:
    """A redis-py client speaking RESP3."""
    c = redis.Redis(port=server.port, protocol=3)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def raw(server: ServerProcess):
    c = server.raw()
    yield c
    c.close()
