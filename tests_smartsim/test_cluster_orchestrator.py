"""SmartSim's clustered Orchestrator, replayed: its local launcher refuses `db_nodes > 1`, so each
shard is started by SmartSim's own database entry point (`smartsim._core.entrypoints.redis ...
+cluster`, which runs the installed launcher with SmartSim's redis.conf, exactly as on Slurm/PBS/LSF
hosts), and the cluster is formed and checked by SmartSim's own `create_cluster` and
`check_cluster_status` (redis-cli --cluster create, then RedisCluster SET/DEL `__test__`). A
SmartRedis client in cluster mode then uses it; stopping the entry points stops everything."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from helpers import gone, port_open, wait_until
from smartredis import Client, Dataset

from tests.support.cluster import front_ports


@pytest.fixture(scope="module")
def orchestrator(site, tmp_path_factory, model_files):
    ports = front_ports(3)
    shards = []
    for i, port in enumerate(ports):
        run_dir = tmp_path_factory.mktemp(f"orc_{i}")
        argv = [sys.executable, "-m", "smartsim._core.entrypoints.redis", "+orc-exe", str(site.launcher),
                "+conf-file", str(site.conf), "+rai-module", "--loadmodule", str(site.redisai_so),
                "+name", f"orc_{i}", "+port", str(port), "+ifname", "lo", "+cluster"]
        out = open(run_dir / "entrypoint.out", "wb")  # noqa: SIM115  (written until the shard stops)
        shards.append((subprocess.Popen(argv, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT), run_dir, out))
    for port in ports:
        assert wait_until(lambda p=port: port_open(p), 60), f"shard on {port} did not start"
    from smartsim._core.utils.redis import check_cluster_status, create_cluster

    create_cluster(["127.0.0.1"], ports)
    check_cluster_status(["127.0.0.1"], ports)
    yield ports, shards
    for proc, _, _ in shards:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, run_dir, out in shards:
        proc.wait(60)
        out.close()


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_smartsim_forms_and_checks_the_cluster(orchestrator) -> None:
    ports, shards = orchestrator
    # each entry point runs the launcher, which is the front; the front runs its store node
    for proc, run_dir, _ in shards:
        tree = descendants(proc.pid)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "redisai_fast" in names and "valkey-server" in names, names
        assert any(f.name.startswith("nodes-orc_") and f.suffix == ".conf" for f in run_dir.iterdir())
    out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{ports[0]}"], capture_output=True, text=True, timeout=60, check=False)
    assert "[OK] All 16384 slots covered." in out.stdout, out.stdout


def test_smartredis_cluster_mode(orchestrator, model_files) -> None:
    ports, _ = orchestrator
    client = Client(address=f"127.0.0.1:{ports[1]}", cluster=True)
    arrays = {f"t{i}": np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(9)}
    for k, a in arrays.items():
        client.put_tensor(k, a)
    for k, a in arrays.items():
        np.testing.assert_array_equal(client.get_tensor(k), a)
    client.set_model_from_file("lin", str(model_files["onnx"]), "ONNX", device="CPU")
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    client.put_tensor("x", x)
    client.run_model("lin", inputs=["x"], outputs=["y"])
    assert client.get_tensor("y").shape == (1, 3)
    for i in range(4):
        ds = Dataset(f"step{i}")
        ds.add_tensor("u", np.full((2,), i, dtype=np.float64))
        ds.add_meta_scalar("step", np.int64(i))
        client.put_dataset(ds)
        client.append_to_list("steps", ds)
    assert client.get_list_length("steps") == 4
    got = client.get_datasets_from_list("steps")
    assert sorted(int(d.get_meta_scalars("step")[0]) for d in got) == [0, 1, 2, 3]


def test_stopping_the_entry_points_leaves_nothing(orchestrator) -> None:
    _, shards = orchestrator
    every = [p.pid for proc, _, _ in shards for p in descendants(proc.pid)]
    for proc, _, _ in shards:
        proc.send_signal(signal.SIGTERM)
    for proc, _, _ in shards:
        proc.wait(60)
    assert wait_until(lambda: all(gone(pid) for pid in every), 30), [pid for pid in every if not gone(pid)]
    assert Path("/proc").exists()
