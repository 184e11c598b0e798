"""SmartRedis 0.6.1 over a Unix socket, as a colocated SmartSim database is reached
(`SSDB=unix:///path`), against a server with no TCP listener (`--port 0`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from smartredis import Client, Dataset

from tests.support.server import ServerProcess


@pytest.fixture
def unix_server(tmp_path: Path):
    path = tmp_path / "colo.sock"
    with ServerProcess("--port", "0", "--unixsocket", str(path), "--unixsocketperm", "755", "--save", "",
                       cwd=str(tmp_path), tcp=False) as s:
        yield s


def test_smartredis_over_the_unix_socket(unix_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSDB", f"unix://{unix_server.unixsocket}")
    client = Client(cluster=False)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    client.put_tensor("t", a)
    np.testing.assert_array_equal(client.get_tensor("t"), a)
    ds = Dataset("ds")
    ds.add_tensor("x", a)
    ds.add_meta_string("note", "colocated")
    client.put_dataset(ds)
    got = client.get_dataset("ds")
    np.testing.assert_array_equal(got.get_tensor("x"), a)
    assert got.get_meta_strings("note") == ["colocated"]
    assert client.dataset_exists("ds")
    client.set_script("s", "def twice(a):\n    return a * 2\n")
    client.run_script("s", "twice", ["t"], ["t2"])
    np.testing.assert_array_equal(client.get_tensor("t2"), a * 2)
    assert os.path.exists(unix_server.unixsocket)
