"""Front nodes (`cluster-enabled yes`) started the way SmartSim's clustered Orchestrator starts its
database on each host, differing only in their ports, and formed into a cluster with
`redis-cli --cluster create`."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.server import ServerProcess

# the directives of SmartSim 0.8.0's redis.conf that matter here (the full file is read in
# tests_smartsim/, where SmartSim is installed)
SMARTSIM_CONF = """protected-mode no
port 6379
tcp-backlog 4096
timeout 0
daemonize no
loglevel notice
logfile ""
databases 16
save ""
dbfilename dump.rdb
dir ./
maxclients 50000
io-threads 4
appendonly no
cluster-require-full-coverage yes
"""

OFFSET = 10000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def front_ports(n: int) -> list[int]:
    """`n` ports p whose store port (p + 10000) and its bus (p + 20000) are free too."""
    found: list[int] = []
    p = 20000 + (os.getpid() * 7) % 9000
    while len(found) < n and p < 45000:
        if all(_free(q) for q in (p, p + OFFSET, p + OFFSET + 10000)):
            found.append(p)
        p += 3
    return found


class FrontNode(ServerProcess):
    """One front, started with SmartSim's argument line (its own directory for SmartSim's `dir ./`)."""

    def __init__(self, port: int, conf: Path, module: Path, *extra: str) -> None:
        self.front_port = port
        run_dir = tempfile.mkdtemp(prefix=f"front-{port}-")
        atexit.register(shutil.rmtree, run_dir, True)
        super().__init__(str(conf), "--loadmodule", str(module), "--port", str(port), "--cluster-enabled", "yes",
                         "--cluster-config-file", f"nodes-orc-{port}.conf", "--bind", "127.0.0.1",
                         "--bind-source-addr", "127.0.0.1", *extra, cwd=run_dir,
                         auto_port=False)

    def store_pid(self) -> int | None:
        """The store node this front started (its child)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True, check=False)
        pids = [int(x) for x in out.stdout.split()]
        return pids[0] if pids else None


def store_client(front: FrontNode) -> redis.Redis:
    """A client of the front's own store node (its Unix socket, in the front's directory)."""
    return redis.Redis(unix_socket_path=str(Path(front.cwd) / f"store-{front.front_port}.sock"))


def wait_replicas_online(fronts: list[FrontNode], replicas: int, timeout: float = 30) -> None:
    """Every primary store node has `replicas` replicas done with their first sync."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = True
        for f in fronts:
            info = store_client(f).info("replication")
            online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"]
            if info.get("role") == "master" and len(online) < replicas:
                ok = False
        if ok:
            return
        time.sleep(0.1)
    raise AssertionError("replicas did not come online")


def make_fronts(tmp: Path, n: int, *extra: str) -> list[FrontNode]:
    conf = tmp / "redis.conf"
    conf.write_text(SMARTSIM_CONF)
    module = tmp / "redisai.so"
    module.write_bytes(b"")
    return [FrontNode(p, conf, module, *extra).start() for p in front_ports(n)]


def create_cluster(fronts: list[FrontNode], replicas: int = 0) -> str:
    """`redis-cli --cluster create ... --cluster-yes`, retried as SmartSim does (up to 5 times)."""
    addrs = [f"127.0.0.1:{f.front_port}" for f in fronts]
    out = None
    for _ in range(5):
        out = subprocess.run(["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", str(replicas), "--cluster-yes"],
                             capture_output=True, text=True, timeout=120, check=False)
        if out.returncode == 0:
            break
        time.sleep(1)
    assert out is not None and out.returncode == 0, f"{out.stdout if out else ''}\n{out.stderr if out else ''}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        infos = [redis.Redis(port=f.front_port).execute_command("CLUSTER", "INFO").decode() for f in fronts if f.alive()]
        if all("cluster_state:ok" in i for i in infos):
            return out.stdout
        time.sleep(0.1)
    raise AssertionError("the cluster did not become ok")


def stop_all(fronts: list[FrontNode]) -> None:
    for f in fronts:
        f.stop()
