"""pytest plugin (the `pytest11` entry point `redisai_fast`): a redisai-fast server for a test
session and a redis-py client per test.

    def test_store(redisai_fast_client):
        redisai_fast_client.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)

`redisai_fast_server` is one `redisai_fast.Server` for the whole session (stopped at its end);
`redisai_fast_client` is a `redis.Redis` connected to it, with the keyspace flushed before each
test. Override the session fixture `redisai_fast_options` (a dict of server directives) in a
conftest.py to configure the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import redis

    from redisai_fast.process import Server


@pytest.fixture(scope="session")
def redisai_fast_options() -> dict[str, Any]:
    """Directives for `redisai_fast_server` (`{"threads_per_queue": 2}`); none by default."""
    return {}


@pytest.fixture(scope="session")
def redisai_fast_server(redisai_fast_options: dict[str, Any]) -> Iterator[Server]:
    """A redisai-fast server in a child process for the test session."""
    from redisai_fast.process import Server

    with Server(**redisai_fast_options) as server:
        yield server


@pytest.fixture
def redisai_fast_client(redisai_fast_server: Server) -> Iterator[redis.Redis]:
    """A redis-py client of `redisai_fast_server`; the keyspace is empty when the test starts."""
    client = redisai_fast_server.client()
    client.flushall()
    yield client
    client.close()
