"""The `redisai-fast` command line read as redis-server reads it: config files, `--name value`
options, `--loadmodule`, typos, and the directives of stock and SmartSim redis.conf files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redisai_fast.cli import startup_from
from redisai_fast.config import ConfigFileError, command_line, load, parse_text, read_config_file, split_args

from tests.support.server import ServerProcess, server_binary

STOCK_CONF = Path("/etc/redis/redis.conf")  # Debian's redis-server package (make test installs it)
MODULE_LIST = [{"name": "ai", "ver": 10207, "path": "redisai_fast (built in)", "args": []}]


def test_split_args_follows_redis_quoting() -> None:
    assert split_args('save 900 1  300 10') == ["save", "900", "1", "300", "10"]
    assert split_args('requirepass "a b" x') == ["requirepass", "a b", "x"]
    assert split_args(r'name "tab\there\x41\"q\\"') == ["name", 'tab\thereA"q\\']
    assert split_args(r"name 'it\'s' ''") == ["name", "it's", ""]
    assert split_args('save ""') == ["save", ""]
    assert split_args('a b"c d"') == ["a", "bc d"]  # a quote inside an argument opens a quoted part
    for bad in ['bind "a b', 'x "a"b', "x 'a'b"]:
        with pytest.raises(ConfigFileError, match="Unbalanced quotes"):
            split_args(bad)


def as_pairs(argv: list[str]) -> list[tuple[str, list[str]]]:
    return [(d.name, d.args) for d in load(argv)]


def test_smartsim_standalone_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("protected-mode no\nport 6379\nsave \"\"\ndatabases 16\n")
    so = tmp_path / "redisai.so"
    so.write_bytes(b"")
    argv = [str(conf), "--loadmodule", str(so), "THREADS_PER_QUEUE", "2", "INTER_OP_PARALLELISM", "1",
            "INTRA_OP_PARALLELISM", "1", "--port", "6780", "--bind", "127.0.0.1", "--bind-source-addr", "127.0.0.1"]
    assert as_pairs(argv) == [
        ("protected-mode", ["no"]), ("port", ["6379"]), ("save", [""]), ("databases", ["16"]),
        ("loadmodule", [str(so), "THREADS_PER_QUEUE", "2", "INTER_OP_PARALLELISM", "1", "INTRA_OP_PARALLELISM", "1"]),
        ("port", ["6780"]), ("bind", ["127.0.0.1"]), ("bind-source-addr", ["127.0.0.1"]),
    ]
    s = startup_from(load(argv))
    assert ("threads_per_queue", "2") in s.options and ("intra_op_parallelism", "1") in s.options
    assert s.options[-1] == ("save", [""]) and s.backends == []


def test_colocated_command_line_with_an_option_in_one_argument(tmp_path: Path) -> None:
    so = tmp_path / "redisai.so"
    so.write_bytes(b"")
    argv = ["--loadmodule", str(so), "--port", "0", "--unixsocket", "/tmp/x.sock", "--unixsocketperm", "755",
            "--logfile", "/tmp/x.log", "--maxclients", "100000", "--bind 127.0.0.1"]
    assert as_pairs(argv)[-2:] == [("maxclients", ["100000"]), ("bind", ["127.0.0.1"])]


def test_options_take_every_value_up_to_the_next_option() -> None:
    assert as_pairs(["--bind", "127.0.0.1", "::1", "--port", "1"]) == [("bind", ["127.0.0.1", "::1"]), ("port", ["1"])]
    # a value may start with `--` when the option has none yet (as redis-server reads it)
    assert as_pairs(["--requirepass", "--secret"]) == [("requirepass", ["--secret"])]
    # `--save` with nothing after it, or before another option, is `save ""`
    assert as_pairs(["--save", "--port", "1"]) == [("save", [""]), ("port", ["1"])]
    assert as_pairs(["--port", "1", "--save"]) == [("port", ["1"]), ("save", [""])]
    assert as_pairs(["--port", "1", "--bind 127.0.0.1 ::1"]) == [("port", ["1"]), ("bind", ["127.0.0.1", "::1"])]
    assert command_line(["x.conf", "--port", "7"]) == ("x.conf", 'port "7" ')
    with pytest.raises(ConfigFileError, match="Invalid argument 'stray'"):
        command_line(["a.conf", "stray"])


def test_save_lines_add_up_and_save_empty_clears(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("save 900 1\nsave 300 10\n")
    assert startup_from(load([str(conf)])).options == [("save", ["900 1 300 10"])]
    assert startup_from(load([str(conf), "--save", ""])).options == [("save", [""])]
    conf.write_text('save ""\n')
    assert startup_from(load([str(conf), "--save", "60", "5"])).options == [("save", ["60 5"])]


def test_include_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "inner.conf").write_text("maxclients 7\n")
    outer = tmp_path / "outer.conf"
    outer.write_text(f"port 1\ninclude {tmp_path / 'inner.conf'}\n")
    assert [(d.name, d.args, d.source) for d in read_config_file(outer)] == [
        ("port", ["1"], f"{outer}:1"), ("maxclients", ["7"], f"{tmp_path / 'inner.conf'}:1")]
    with pytest.raises(ConfigFileError, match="can't open config file"):
        read_config_file(tmp_path / "missing.conf")
    assert [d.name for d in parse_text("# c\n\n  PORT 1  \n", "x")] == ["port"]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([server_binary(), *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--prot", "6379"], "'prot': Bad directive or wrong number of arguments"),
        (["--port", "1", "2"], "'port': Bad directive or wrong number of arguments"),
        (["--maxclients", "abc"], "'maxclients': argument couldn't be parsed into an integer"),
        (["--port", "abc"], "'port': argument must be a port number"),
        (["/nonexistent.conf"], "can't open config file '/nonexistent.conf'"),
        (["--loadmodule", "/nonexistent/redisai.so"], "Module /nonexistent/redisai.so failed to load"),
        (["--port", "0"], "Configured to not listen anywhere, exiting."),
    ],
)
def test_typos_and_bad_values_stop_the_start_with_a_message(args: list[str], message: str) -> None:
    out = run_cli("--dir", "/tmp", "--save", "", *args) if not args[0].startswith("/") else run_cli(*args)
    assert out.returncode == 1, out
    assert message in out.stderr + out.stdout


def test_a_typo_in_a_config_file_names_the_file_line_and_text(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("port 7000\nmaxclents 5\n")
    out = run_cli(str(conf))
    assert out.returncode == 1
    assert f"at {conf}:2" in out.stderr and ">>> 'maxclents 5'" in out.stderr
    assert "'maxclents': Bad directive or wrong number of arguments" in out.stderr


def test_help_and_version() -> None:
    out = run_cli("--help")
    assert out.returncode == 0 and "redisai-fast [/path/to/redis.conf] [options]" in out.stdout
    out = run_cli("-v")
    assert out.returncode == 0 and out.stdout.startswith("redisai-fast v=")


def test_config_file_and_flags(tmp_path: Path) -> None:
    conf = tmp_path / "s.conf"
    conf.write_text("maxclients 3\nmax-tensor-bytes 1mb\nTHREADS_PER_QUEUE 2\nmaxmemory 10mb\n")
    for first in ([str(conf)], ["--config", str(conf)]):  # redis-server's spelling, and our older one
        with ServerProcess(*first, "--maxmemory", "20mb") as s:  # the flag wins
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
            r.close()


@pytest.mark.skipif(not STOCK_CONF.exists(), reason="Debian's redis-server package (stock redis.conf) is not installed")
def test_a_stock_redis_conf_loads_and_reports_what_it_ignores(tmp_path: Path) -> None:
    # the stock file daemonizes, logs to /var/log and keeps data in /var/lib: the flags point
    # those here (as Redis, options after the file win)
    with ServerProcess(str(STOCK_CONF), "--logfile", "", "--dir", str(tmp_path), cwd=str(tmp_path)) as s:
        r = redis.Redis(port=s.port)
        assert r.ping()
        # implemented directives take effect, ignored ones are answered as given
        assert r.config_get("protected-mode") == {"protected-mode": "yes"}
        assert r.config_get("bind") == {"bind": "127.0.0.1 -::1"}
        assert r.config_get("databases") == {"databases": "16"}
        assert r.config_get("tcp-keepalive") == {"tcp-keepalive": "300"}
        assert r.config_get("client-output-buffer-limit")["client-output-buffer-limit"].startswith("pubsub")
        assert r.set("k", "v") and r.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            r.select(1)
        lines = [ln for ln in s.log().splitlines() if "Accepted without effect" in ln]
        assert len(lines) == 1
        for name in ("daemonize", "pidfile", "tcp-backlog", "always-show-logo", "hz"):
            assert re.search(rf"\b{name}\b", lines[0]), name
        assert "protected-mode" not in lines[0] and " port " not in lines[0]
        r.close()


def test_config_set_and_get_of_an_ignored_directive(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port, decode_responses=True)
    assert r.config_get("hz") == {"hz": "10"}
    assert r.config_set("hz", "20") is True
    assert r.config_get("hz") == {"hz": "20"}
    assert "rename-command" not in r.config_get("*")
    r.close()


def test_save_empty_in_the_file_or_the_flags(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text('save ""\n')
    with ServerProcess(str(conf), "--dir", str(tmp_path)) as s:
        assert redis.Redis(port=s.port).config_get("save") == {"save": ""}
    conf.write_text("save 900 1\n")
    with ServerProcess(str(conf), "--dir", str(tmp_path), "--save", "") as s:
        assert redis.Redis(port=s.port).config_get("save") == {"save": ""}
    with ServerProcess(str(conf), "--dir", str(tmp_path)) as s:
        assert redis.Redis(port=s.port).config_get("save") == {"save": "900 1"}


def test_loadmodule_options_are_redisais(tmp_path: Path) -> None:
    so = tmp_path / "redisai.so"
    so.write_bytes(b"not really a module: any file selects the built-in engine")
    with ServerProcess("--loadmodule", str(so), "THREADS_PER_QUEUE", "3", "INTRA_OP_PARALLELISM", "1",
                       "MODEL_CHUNK_SIZE", "1000", "--save", "", "--dir", str(tmp_path)) as s:
        r = redis.Redis(port=s.port, decode_responses=True)
        info = r.info("ai")
        assert info["ai_threads_per_queue"] == 3 and info["ai_intra_op_parallelism"] == 1
        assert r.execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 1000
        assert r.execute_command("MODULE", "LIST") == MODULE_LIST
        r.close()
    out = run_cli("--loadmodule", str(so), "THREADS_PER_QUEUE")
    assert out.returncode == 1 and "Even number of arguments provided to module" in out.stderr
    out = run_cli("--loadmodule", str(so), "NOPE", "1")
    assert out.returncode == 1 and "error processing argument: NOPE 1" in out.stderr


def test_loadmodule_backend_paths_load_the_backend_at_start(tmp_path: Path) -> None:
    so = tmp_path / "redisai.so"
    so.write_bytes(b"")
    onnx = tmp_path / "backends" / "redisai_onnxruntime" / "redisai_onnxruntime.so"
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"")
    with ServerProcess("--loadmodule", str(so), "ONNX", str(onnx), "--save", "", "--dir", str(tmp_path)) as s:
        info = redis.Redis(port=s.port, decode_responses=True).info("ai")
        assert "ai_ONNX_version" in info, info


def test_logfile_writes_the_log_there(tmp_path: Path) -> None:
    logfile = tmp_path / "server.log.txt"
    proc = subprocess.Popen([server_binary(), "--port", "auto", "--logfile", str(logfile), "--save", "",
                             "--dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (logfile.exists() and "ready to accept connections" in logfile.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        m = re.search(r"connections on [\d.]+:(\d+)", logfile.read_text())
        assert m
        assert redis.Redis(port=int(m.group(1))).ping()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert b"ready to accept" not in out  # nothing went to standard output
    assert "bye bye" in logfile.read_text()


def test_bind_and_loglevel() -> None:
    with ServerProcess("--bind", "127.0.0.1", "--loglevel", "warning") as s:
        assert redis.Redis(host="127.0.0.1", port=s.port).ping()
        assert redis.Redis(port=s.port).config_get("loglevel") == {"loglevel": "warning"}
