"""SmartSim 0.8.0 itself launches redisai-fast after `redisai-fast smartsim install` and with no
other environment variable: an Experiment on the local launcher with a standalone Orchestrator, and
applications with a colocated database over TCP and over a Unix socket. Each time the experiment's
application (tests_smartsim/app.py, SmartRedis `Client(cluster=False)` reading SSDB) uses tensors,
a TorchScript and an ONNX model, a script and a dataset; the database stops with the experiment and
leaves no process, port or socket behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import redis
from helpers import children_left, free_port, gone, port_open, wait_until
from smartsim import Experiment
from smartsim.status import SmartSimStatus

from tests.support.models import linear_expected

APP = Path(__file__).resolve().parent / "app.py"
A = np.arange(12, dtype=np.float32).reshape(3, 4)


def app_model(exp: Experiment, tmp_path: Path, model_files: dict[str, Path]):
    results = tmp_path / "results.json"
    settings = exp.create_run_settings(
        exe=sys.executable, exe_args=[str(APP), str(results), str(model_files["torch"]), str(model_files["onnx"])]
    )
    return exp.create_model("app", settings), results


def check_app_results(results: Path) -> dict:
    """What every application run must have seen; returns the results for more checks."""
    out = json.loads(results.read_text())
    assert out["tensor"] == A.tolist()
    np.testing.assert_allclose(out["torch_y"], linear_expected(A), rtol=1e-6)
    np.testing.assert_allclose(out["onnx_y"], linear_expected(A), rtol=1e-6)
    assert out["script_y"] == (A * 2).tolist()
    assert out["dataset"] == {"exists": True, "x": A.tolist(), "note": ["from the app"], "step": [7]}
    return out


def run_to_the_end(exp: Experiment, app) -> None:
    """Starts `app` and waits for it, polling each second (`block=True` polls every 5 s)."""
    exp.start(app)
    assert wait_until(lambda: exp.finished(app), 180), exp.get_status(app)
    assert exp.get_status(app) == [SmartSimStatus.STATUS_COMPLETED]


def redisai_fast_processes() -> list[int]:
    """Our descendants that run redisai-fast (the launcher execs it, keeping its PID)."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "redisai_fast.cli" in " ".join(p.cmdline()):
                found.append(p.pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.usefixtures("smartsim_env")
def test_standalone_orchestrator(site, model_files, tmp_path: Path) -> None:
    exp = Experiment("standalone", exp_path=str(tmp_path), launcher="local")
    port = free_port()
    db = exp.create_database(port=port, interface="lo")
    app, results = app_model(exp, tmp_path, model_files)
    exp.start(db)
    try:
        assert db.is_active()
        servers = redisai_fast_processes()
        assert len(servers) == 1, servers
        r = redis.Redis(port=port, decode_responses=True)
        assert r.info("server")["process_id"] == servers[0]
        # SmartSim's redis.conf and its own arguments reached the server
        assert r.config_get("maxclients") == {"maxclients": "50000"}
        assert r.config_get("protected-mode") == {"protected-mode": "no"}
        assert r.config_get("bind-source-addr") == {"bind-source-addr": "127.0.0.1"}
        run_to_the_end(exp, app)
        out = check_app_results(results)
        assert out["ssdb"] == f"127.0.0.1:{port}" and out["server_pid"] == servers[0]
        # the Orchestrator's own configuration calls (SmartRedis CONFIG SET through SmartSim)
        db.set_max_memory("3gb")
        db.set_max_clients(20_000)
        db.set_max_message_size(2 * 1024 * 1024 * 1024)
        db.set_eviction_strategy("noeviction")
        assert r.config_get("maxmemory") == {"maxmemory": str(3 * 1024**3)}  # "3gb", as Redis reads it
        assert r.config_get("maxclients") == {"maxclients": "20000"}
        assert r.config_get("proto-max-bulk-len") == {"proto-max-bulk-len": str(2 * 1024**3)}
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        r.close()
    finally:
        exp.stop(db)
    assert exp.get_status(db) == [SmartSimStatus.STATUS_CANCELLED]
    assert wait_until(lambda: gone(servers[0]), 15), "the database outlived exp.stop"
    assert not port_open(port)
    assert children_left() == []
    log = (tmp_path / "orchestrator" / "orchestrator_0.out").read_text()
    assert "User requested shutdown" in log  # SmartSim stopped it with `redis-cli shutdown`


@pytest.mark.usefixtures("smartsim_env")
@pytest.mark.parametrize("transport", ["tcp", "uds"])
def test_colocated_database(site, model_files, tmp_path: Path, transport: str) -> None:
    exp = Experiment(f"colocated_{transport}", exp_path=str(tmp_path), launcher="local")
    app, results = app_model(exp, tmp_path, model_files)
    port = free_port()
    sock = tmp_path / "db.sock"
    if transport == "tcp":
        app.colocate_db_tcp(port=port)
    else:
        app.colocate_db_uds(unix_socket=str(sock))
    run_to_the_end(exp, app)
    out = check_app_results(results)
    assert out["ssdb"] == (f"127.0.0.1:{port}" if transport == "tcp" else f"unix://{sock}")
    # the application's end stops its database (SmartSim's wrapper sends SIGTERM)
    assert wait_until(lambda: gone(out["server_pid"]), 15), "the colocated database outlived its application"
    assert not port_open(port)
    assert not sock.exists()
    assert children_left() == []
