"""redisai_fast.Server (a server in a child process) and the pytest plugin's fixtures: ready when
the constructor returns, options as directives, start failures with the server's message, and
no server left behind (stop, `with`, interpreter exit, a parent that dies)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis
import redisai_fast
from redis.backoff import NoBackoff
from redis.retry import Retry
from redisai_fast import errors, process

ROOT = Path(__file__).resolve().parent.parent


def gone(pid: int, wait: float = 60.0) -> bool:
    """True once no process `pid` exists (waiting up to `wait` s for it to exit)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return True  # exited; its parent has not collected it yet
        time.sleep(0.02)
    return False


def test_start_use_stop() -> None:
    server = redisai_fast.Server()
    try:
        assert server.port and server.url == f"redis://127.0.0.1:{server.port}"
        pid = server.pid
        assert pid is not None and pid != os.getpid()
        r = server.client(protocol=2)
        assert r.ping() is True  # ready as soon as the constructor returned
        assert r.info("server")["process_id"] == pid
        r.execute_command("AI.TENSORSET", "t", "FLOAT", 2, "VALUES", 1, 2)
        assert r.execute_command("AI.TENSORGET", "t", "VALUES") == [b"1", b"2"]
        r.close()
    finally:
        server.stop()
    assert server.pid is None and server.returncode == 0
    assert gone(pid)
    server.stop()  # again: nothing to do


def test_options_are_directives(tmp_path: Path) -> None:
    with redisai_fast.Server(dir=tmp_path, appendonly=True, threads_per_queue=2, save="", requirepass="s3cret") as server:
        assert server.url == f"redis://:s3cret@127.0.0.1:{server.port}"
        r = server.client(protocol=2)
        assert r.config_get("appendonly") == {"appendonly": "yes"}
        assert r.config_get("threads_per_queue") == {"threads_per_queue": "2"}
        assert r.config_get("dir") == {"dir": str(tmp_path)}
        r.set("k", "v")
        assert redis.Redis.from_url(server.url).get("k") == b"v"
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0)).ping()
        r.close()
    assert b"SET" in (tmp_path / "appendonly.aof").read_bytes()


def test_temporary_directory_is_removed(tmp_path: Path) -> None:
    with redisai_fast.Server() as server:
        r = server.client()
        workdir = Path(r.config_get("dir")["dir"])
        assert r.save() is True
        assert (workdir / "dump.snapshot").exists()
        r.close()
    assert not workdir.exists()


def test_bad_option_raises_the_servers_message() -> None:
    with pytest.raises(errors.ServerStartError, match="^'nosuchoption': Bad directive or wrong number of arguments$") as exc:
        redisai_fast.Server(nosuchoption="x")
    assert exc.value.returncode == 1
    assert "*** FATAL CONFIG FILE ERROR" in exc.value.output
    with pytest.raises(errors.ServerStartError, match="^'maxclients': argument couldn't be parsed into an integer$"):
        redisai_fast.Server(maxclients="many")


def test_port_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(errors.ServerStartError, match=rf"^Could not create server TCP listening socket 127.0.0.1:{port}: .*address already in use$"):
            redisai_fast.Server(port=port)
        # a port chosen here and taken before the server binds it: another one is tried
        picks = iter([port])
        real = process.free_port

        def racing_free_port(host: str = "127.0.0.1") -> int:
            return next(picks, None) or real(host)

        monkeypatch.setattr(process, "free_port", racing_free_port)
        with redisai_fast.Server() as server:
            assert server.port != port
            assert server.client().ping() is True
            assert server.output().count("address already in use") == 1


def test_unixsocket(tmp_path: Path) -> None:
    path = tmp_path / "server.sock"
    with redisai_fast.Server(port=0, unixsocket=path) as server:  # port 0: no TCP listener
        assert server.port is None and server.unixsocket == str(path)
        assert server.url == f"unix://{path}"
        r = server.client()
        assert r.ping() is True
        assert r.config_get("port") == {"port": "0"}
        assert redis.Redis.from_url(server.url).ping() is True
    with redisai_fast.Server(unixsocket=path) as server:  # both
        assert server.port and server.client().ping() is True
        assert redis.Redis(unix_socket_path=str(path)).ping() is True
    assert not path.exists()  # removed at shutdown


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


def test_stopped_at_interpreter_exit() -> None:
    done = run_python("""
        import redisai_fast
        server = redisai_fast.Server()
        print(server.pid, flush=True)
    """)
    assert done.returncode == 0, done.stderr
    assert gone(int(done.stdout.split()[0]))


def test_stopped_when_the_parent_dies_without_cleaning_up() -> None:
    # SIGKILL: no atexit, no stop(); the child sees its stdin pipe close and shuts down
    done = run_python("""
        import os, signal, redisai_fast
        server = redisai_fast.Server()
        print(server.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert done.returncode == -signal.SIGKILL
    assert gone(int(done.stdout.split()[0]))


def test_pytest_fixtures_in_a_downstream_test_suite(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.fixture(scope="session")
        def redisai_fast_options():
            return {"threads_per_queue": 2}
    """))
    (tmp_path / "test_downstream.py").write_text(textwrap.dedent(f"""
        def test_store(redisai_fast_server, redisai_fast_client):
            with open({str(pids)!r}, "a") as f:
                print(redisai_fast_server.pid, file=f)
            assert redisai_fast_client.config_get("threads_per_queue") == {{"threads_per_queue": "2"}}
            redisai_fast_client.execute_command("AI.TENSORSET", "t", "INT8", 1, "VALUES", 5)
            assert redisai_fast_client.execute_command("AI.TENSORGET", "t", "VALUES") == [5]

        def test_fresh_keyspace_same_server(redisai_fast_server, redisai_fast_client):
            with open({str(pids)!r}, "a") as f:
                print(redisai_fast_server.pid, file=f)
            assert redisai_fast_client.dbsize() == 0
    """))
    # a plain pytest run: the plugin comes from the installed package's pytest11 entry point
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    first, second = pids.read_text().split()
    assert first == second  # one server for the session
    assert gone(int(first))  # stopped at the end of the session
