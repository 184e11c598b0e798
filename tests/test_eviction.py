"""maxmemory and every maxmemory-policy against a real server: which keys go, OOM, evicted_keys,
the INFO memory fields, OBJECT FREQ/IDLETIME, evictions in the AOF and for WATCH."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.support.models import onnx_linear
from tests.support.server import ServerProcess

POLICIES = ["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
            "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"]
VALUE = b"v" * 4096
OOM = "OOM command not allowed when used memory > 'maxmemory'."


@pytest.fixture(scope="module")
def srv():
    with ServerProcess("--save", "") as s:
        yield s


@pytest.fixture
def r(srv: ServerProcess):
    c = redis.Redis(port=srv.port)
    c.config_set("maxmemory", "0")
    c.flushall()
    c.config_set("maxmemory-samples", "64")
    c.config_resetstat()
    yield c
    c.config_set("maxmemory", "0")
    c.config_set("maxmemory-policy", "noeviction")
    c.config_set("maxmemory-samples", "5")
    c.close()


def used(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def squeeze(r: redis.Redis, keys_worth: int) -> None:
    """Sets maxmemory to what is used now less about `keys_worth` values."""
    r.config_set("maxmemory", str(max(1, used(r) - keys_worth * len(VALUE))))


def evicted(r: redis.Redis) -> int:
    return int(r.info("stats")["evicted_keys"])


def gone(r: redis.Redis, names: list[str]) -> set[str]:
    return {n for n in names if not r.exists(n)}


def test_config_set_every_policy_as_smartsim_sends_it(r: redis.Redis) -> None:
    # SmartSim's Client.set_eviction_strategy: CONFIG SET maxmemory-policy <policy>
    for p in POLICIES:
        assert r.config_set("maxmemory-policy", p) is True
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": p}
        assert r.info("memory")["maxmemory_policy"] == p
    r.config_set("maxmemory-policy", "ALLKEYS-LFU")
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lfu"}
    with pytest.raises(redis.ResponseError) as e:
        r.config_set("maxmemory-policy", "lru")
    assert str(e.value) == (
        "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the "
        "following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, "
        "allkeys-random, noeviction")
    assert r.config_get("maxmemory-samples") == {"maxmemory-samples": "64"}
    assert r.config_get("lfu-*") == {"lfu-log-factor": "10", "lfu-decay-time": "1"}


def test_policy_flag_at_start() -> None:
    with ServerProcess("--maxmemory-policy", "volatile-ttl", "--maxmemory", "10mb") as s:
        c = redis.Redis(port=s.port)
        assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-ttl"}
        assert c.info("memory")["maxmemory"] == 10 * 1024 * 1024


def test_policy_in_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("maxmemory-policy allkeys-lfu\nmaxmemory-samples 10\nlfu-log-factor 20\nlfu-decay-time 0\n")
    with ServerProcess("--config", str(conf)) as s:
        c = redis.Redis(port=s.port)
        # as redis-server answers it (maxmemory-clients and -eviction-tenacity are accepted, without effect)
        assert c.config_get("maxmemory-*") == {"maxmemory-policy": "allkeys-lfu", "maxmemory-samples": "10",
                                               "maxmemory-clients": "0", "maxmemory-eviction-tenacity": "10"}
        assert c.config_get("lfu-*") == {"lfu-log-factor": "20", "lfu-decay-time": "0"}
        c.set("f", 1)
        assert c.object("freq", "f") == 5


def test_noeviction_answers_oom_and_keeps_everything(r: redis.Redis) -> None:
    names = [f"k{i}" for i in range(40)]
    for n in names:
        r.set(n, VALUE)
    squeeze(r, 5)
    with pytest.raises(redis.exceptions.OutOfMemoryError) as e:
        r.set("more", VALUE)
    assert str(e.value) == OOM.removeprefix("OOM ")  # redis-py strips the error code
    assert gone(r, names) == set()
    assert r.get("k0") == VALUE  # reads and deletes still work
    assert r.delete("k0", "k1") == 2
    assert evicted(r) == 0


@pytest.mark.parametrize("policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
def test_volatile_policies_keep_keys_without_ttl(r: redis.Redis, policy: str) -> None:
    r.config_set("maxmemory-policy", policy)
    keep = [f"keep{i}" for i in range(30)]
    vol = [f"vol{i}" for i in range(30)]
    for n in keep:
        r.set(n, VALUE)
    for i, n in enumerate(vol):
        r.set(n, VALUE, ex=1000 + i)
    squeeze(r, 10)
    assert r.set("new", b"x") is True
    assert gone(r, keep) == set()
    out = gone(r, vol)
    assert 8 <= len(out) <= 20, out
    assert evicted(r) == len(out)
    # with every volatile key gone, nothing else may go: OOM
    squeeze(r, 100)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("more", VALUE)
    assert gone(r, vol) == set(vol)
    assert gone(r, keep) == set()


def test_volatile_ttl_drops_the_nearest_expiry_first(r: redis.Redis) -> None:
    r.config_set("maxmemory-policy", "volatile-ttl")
    vol = [f"vol{i}" for i in range(40)]
    for i, n in enumerate(vol):
        r.set(n, VALUE, ex=1000 + 10 * i)
    squeeze(r, 10)
    r.set("new", b"x")
    out = gone(r, vol)
    n = len(out)
    assert 8 <= n <= 20
    assert out == set(vol[:n])


def test_allkeys_lru_keeps_recently_read_keys(r: redis.Redis) -> None:
    r.config_set("maxmemory-policy", "allkeys-lru")
    names = [f"k{i}" for i in range(60)]
    for n in names:
        r.set(n, VALUE)
    time.sleep(1.1)  # the LRU clock counts seconds, as Redis's
    read = names[:30]
    for n in read:
        assert r.get(n) == VALUE
    squeeze(r, 10)
    r.set("new", b"x")
    out = gone(r, names)
    assert 8 <= len(out) <= 20
    assert out.isdisjoint(read), out & set(read)
    idle = min(set(names) - out - set(read))
    # written 1.1 s before the reads: idle at least a second longer than a key read since, however
    # long the squeeze took (the clock counts whole seconds)
    assert r.object("idletime", idle) >= r.object("idletime", "k0") + 1


def test_allkeys_lfu_keeps_frequently_read_keys(r: redis.Redis) -> None:
    r.config_set("maxmemory-policy", "allkeys-lfu")
    names = [f"k{i}" for i in range(60)]
    for n in names:
        r.set(n, VALUE)
    hot = names[40:]
    p = r.pipeline(transaction=False)
    for _ in range(100):
        for n in hot:
            p.get(n)
    p.execute()
    squeeze(r, 10)
    r.set("new", b"x")
    out = gone(r, names)
    assert 8 <= len(out) <= 20
    assert out.isdisjoint(hot), out & set(hot)


def test_object_freq_and_idletime_follow_the_policy(r: redis.Redis) -> None:
    r.set("a", 1)
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is not selected, access frequency not tracked"):
        r.object("freq", "a")
    assert r.object("idletime", "a") == 0
    r.config_set("maxmemory-policy", "allkeys-lfu")
    r.set("f", 1)
    assert r.object("freq", "f") == 5  # LFU_INIT_VAL, as Redis starts a new key
    r.get("f")
    assert r.object("freq", "f") == 6  # the first hits always count
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is selected, idle time not tracked"):
        r.object("idletime", "f")
    assert r.object("freq", "nope") is None


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_models_and_scripts_survive_allkeys_policies(r: redis.Redis, policy: str) -> None:
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", onnx_linear())
    r.config_set("maxmemory-policy", policy)
    names = [f"k{i}" for i in range(30)]
    for n in names:
        r.execute_command("AI.TENSORSET", n, "UINT8", len(VALUE), "BLOB", VALUE)
    squeeze(r, 20)
    assert r.set("new", b"x") is True
    assert 15 <= len(gone(r, names)) <= 30
    assert r.exists("m") == 1
    assert r.type("m") == b"AI__MODEL"
    # nothing else left: then the model goes too, and the write is refused
    r.config_set("maxmemory", "1")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("more", b"x")
    assert r.dbsize() == 0


def test_allkeys_random_evicts_until_under_the_limit(r: redis.Redis) -> None:
    r.config_set("maxmemory-policy", "allkeys-random")
    names = [f"k{i}" for i in range(50)]
    for n in names:
        r.set(n, VALUE)
    squeeze(r, 20)
    r.set("new", b"x")
    assert 18 <= len(gone(r, names)) <= 30
    assert used(r) <= int(r.config_get("maxmemory")["maxmemory"]) + 64 * 1024


def test_eviction_wakes_watchers(srv: ServerProcess, r: redis.Redis) -> None:
    r.config_set("maxmemory-policy", "allkeys-random")
    r.set("w", b"w" * 200_000)
    watcher = redis.Redis(port=srv.port)
    p = watcher.pipeline()
    p.watch("w")
    r.config_set("maxmemory", str(used(r) - 100_000))
    r.set("x", b"1")  # evicts w, the only key
    assert r.exists("w") == 0
    p.multi()
    p.set("w", b"mine")
    with pytest.raises(redis.WatchError):
        p.execute()
    watcher.close()


def test_info_memory_fields(r: redis.Redis) -> None:
    r.set("big", b"x" * 2_000_000)
    m = r.info("memory")
    assert m["used_memory_peak"] >= m["used_memory"] >= 2_000_000
    peak = m["used_memory_peak"]
    r.delete("big")
    m = r.info("memory")
    assert m["used_memory_peak"] >= peak > m["used_memory"]
    assert m["used_memory_peak_human"].endswith(("K", "M", "G"))
    total_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal:")))
    assert m["total_system_memory"] == total_kib * 1024
    assert m["total_system_memory_human"].endswith(("M", "G"))
    assert m["maxmemory_policy"] == "noeviction"


def test_evictions_reach_the_aof_as_dels(tmp_path: Path) -> None:
    args = ("--dir", str(tmp_path), "--appendonly", "yes", "--save", "", "--maxmemory-policy", "allkeys-lru")
    names = [f"k{i}" for i in range(40)]
    with ServerProcess(*args, cwd=str(tmp_path)) as s:
        c = redis.Redis(port=s.port)
        for n in names:
            c.set(n, VALUE)
        squeeze(c, 10)
        c.set("new", b"x")
        out = gone(c, names)
        assert out
        kept = c.dbsize()
    with ServerProcess(*args, cwd=str(tmp_path)) as s:
        c = redis.Redis(port=s.port)
        assert c.dbsize() == kept
        assert gone(c, names) == out
    assert b"DEL" in (tmp_path / "appendonly.aof").read_bytes()
