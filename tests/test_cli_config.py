"""The `redisai-fast` command line: flags, the redis.conf-style config file, bad options."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from redisai_fast.config import ConfigFileError, read_config_file

from tests.support.server import ServerProcess, server_binary


def test_read_config_file(tmp_path: Path) -> None:
    f = tmp_path / "redis.conf"
    f.write_text('# comment\nport 7000\n\nrequirepass "a b"\nsave 900 1 300 10\nTHREADS_PER_QUEUE 4\n')
    assert read_config_file(f) == [("port", "7000"), ("requirepass", "a b"), ("save", "900 1 300 10"),
                                   ("threads_per_queue", "4")]
    f.write_text("port\n")
    with pytest.raises(ConfigFileError, match="needs a value"):
        read_config_file(f)


def test_config_file_and_flags(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("maxclients 3\nmax-tensor-bytes 1mb\nTHREADS_PER_QUEUE 2\nmaxmemory 10mb\n")
    with ServerProcess("--config", str(conf), "--maxmemory", "20mb") as s:  # the flag wins
        r = redis.Redis(port=s.port)
        assert r.config_get("maxclients") == {"maxclients": "3"}
        assert r.config_get("max-tensor-bytes") == {"max-tensor-bytes": "1048576"}
        assert r.config_get("threads_per_queue") == {"threads_per_queue": "2"}
        assert r.config_get("maxmemory") == {"maxmemory": "20971520"}
        # maxclients is enforced
        extra = [redis.Redis(port=s.port) for _ in range(3)]
        for c in extra[:2]:
            c.ping()
        with pytest.raises(redis.ConnectionError, match="max number of clients reached"):
            extra[2].ping()
        for c in extra:
            c.close()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--nosuch", "1"], "unknown option 'nosuch'"),
        (["--maxclients", "abc"], "bad value for 'maxclients'"),
        (["--config", "/nonexistent.conf"], "cannot read config"),
    ],
)
def test_bad_options_exit_with_a_message(args: list[str], message: str) -> None:
    out = subprocess.run([server_binary(), "--port", "0", *args], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 2
    assert message in out.stderr


def test_help_lists_the_flags() -> None:
    out = subprocess.run([server_binary(), "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0
    for flag in ("--port", "--bind", "--requirepass", "--config", "--loglevel"):
        assert flag in out.stdout


def test_bind_and_loglevel() -> None:
    with ServerProcess("--bind", "127.0.0.1", "--loglevel", "warning") as s:
        assert redis.Redis(host="127.0.0.1", port=s.port).ping()
        assert redis.Redis(port=s.port).config_get("loglevel") == {"loglevel": "warning"}
