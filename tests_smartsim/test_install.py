"""`redisai-fast smartsim install|uninstall` on SmartSim dependency paths of their own
(SMARTSIM_DEP_INSTALL_PATH, given to the two commands only): a fresh one, one `smart build` filled,
installing twice, uninstalling what was never installed, the errors, and the launcher itself."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import redis
from helpers import Launched, free_port, redisai_fast, server_python, tree

from tests.support.server import READY


def with_dep(dep: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SMARTSIM_DEP_INSTALL_PATH": str(dep), **extra}


def smartsim_config(env: dict[str, str]) -> dict[str, str]:
    """What SmartSim's own Config resolves in that environment."""
    code = (
        "import json; from smartsim._core.config import CONFIG; "
        "print(json.dumps({'exe': CONFIG.database_exe, 'cli': CONFIG.database_cli, 'rai': CONFIG.redisai}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def core_bin() -> Path:
    from smartsim._core.config import CONFIG

    return Path(CONFIG.core_path) / "bin"


def test_install_into_a_fresh_dependency_path_and_back(tmp_path: Path) -> None:
    dep = tmp_path / "deps"
    dep.mkdir()
    core_bin_before = core_bin().exists()
    env = with_dep(dep)
    done = redisai_fast("smartsim", "install", "--python", sys.executable, env=env)
    assert done.returncode == 0, done.stderr
    assert f"dependency path {dep}" in done.stdout
    launcher = dep / "bin" / "redis-server"
    assert not launcher.is_symlink() and launcher.stat().st_mode & stat.S_IXUSR
    text = launcher.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"exec {server_python()} -c " in text  # this installation's interpreter, by absolute path
    assert "redisai-fast" in (dep / "lib" / "redisai.so").read_text()
    assert smartsim_config(env) == {
        "exe": str(launcher), "cli": str(dep / "bin" / "redis-cli"), "rai": str(dep / "lib" / "redisai.so")}
    assert core_bin().is_dir()  # exp.start lists it whatever the dependency path is
    undone = redisai_fast("smartsim", "uninstall", "--python", sys.executable, env=env)
    assert undone.returncode == 0, undone.stderr
    assert tree(dep) == {}
    assert core_bin().exists() == core_bin_before


def test_what_smart_build_left_is_moved_aside_and_put_back(tmp_path: Path) -> None:
    dep = tmp_path / "deps"
    executable(dep / "bin" / "redis-server", "#!/bin/sh\necho the real redis-server\n")
    executable(dep / "bin" / "keydb-server", "#!/bin/sh\necho another database\n")
    executable(dep / "bin" / "redis-cli", "#!/bin/sh\necho the real redis-cli\n")
    (dep / "lib" / "backends" / "redisai_torch").mkdir(parents=True)
    (dep / "lib" / "backends" / "redisai_torch" / "redisai_torch.so").write_bytes(b"\x7fELF torch backend")
    (dep / "lib" / "redisai.so").write_bytes(b"\x7fELF RedisAI 1.2.7")
    os.symlink("redis-server", dep / "bin" / "redis-server-link")  # not matched by `*-server`
    before = tree(dep)
    env = with_dep(dep)
    outputs = []
    for _ in range(2):  # installing twice is the same as once
        done = redisai_fast("smartsim", "install", "--python", sys.executable, env=env)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
        assert sorted(p.name for p in (dep / "bin").glob("*-server")) == ["redis-server"]
        assert smartsim_config(env)["exe"] == str(dep / "bin" / "redis-server")
        assert "written by `redisai-fast smartsim install`" in (dep / "bin" / "redis-server").read_text()
        # a working redis-cli from `smart build` is kept; the RedisAI library is replaced by the marker
        assert (dep / "bin" / "redis-cli").read_text() == "#!/bin/sh\necho the real redis-cli\n"
        assert (dep / "lib" / "redisai.so").read_text().startswith("This is not RedisAI.")
        assert (dep / "lib" / "backends" / "redisai_torch" / "redisai_torch.so").exists()
    for rel in ("bin/keydb-server", "bin/redis-server", "lib/redisai.so"):
        assert f"moved aside: {rel}" in outputs[0] and "moved aside" not in outputs[1]
    assert "bin/redis-cli: kept the one that is there" in outputs[0]
    for _ in range(2):  # and uninstalling twice is fine
        undone = redisai_fast("smartsim", "uninstall", "--python", sys.executable, env=env)
        assert undone.returncode == 0, undone.stderr
        assert tree(dep) == before
    assert "nothing to uninstall" in undone.stdout


def test_without_a_system_redis_cli_nothing_changes(tmp_path: Path) -> None:
    dep = tmp_path / "deps"
    dep.mkdir()
    path = tmp_path / "path"  # a PATH with git (smartsim's import needs it: GitPython) and no redis-cli
    path.mkdir()
    git = shutil.which("git")
    assert git, "git is needed by smartsim's import (GitPython)"
    os.symlink(git, path / "git")
    done = redisai_fast("smartsim", "install", "--python", sys.executable, env=with_dep(dep, PATH=str(path)))
    assert done.returncode == 1
    assert "redis-cli is not installed" in done.stderr and "apt-get install redis-tools" in done.stderr
    assert tree(dep) == {}


def test_errors_name_the_interpreter() -> None:
    # the server venv has no smartsim: the default interpreter is refused with the fix
    done = redisai_fast("smartsim", "install")
    assert done.returncode == 1
    assert f"smartsim is not installed in this environment ({server_python()})" in done.stderr
    assert "--python /path/to/smartsim-venv/bin/python" in done.stderr
    done = redisai_fast("smartsim", "install", "--python", "/no/such/python")
    assert done.returncode == 1 and "--python /no/such/python: no such interpreter" in done.stderr
    done = redisai_fast("smartsim", "install", "--python", server_python())
    assert done.returncode == 1 and "cannot import smartsim" in done.stderr


def test_the_launcher_runs_in_its_own_environment_from_any_directory(tmp_path: Path) -> None:
    """SmartSim starts the launcher in its run directory, with its own PATH and interpreter
    settings: none of them reach redisai-fast."""
    dep = tmp_path / "deps"
    dep.mkdir()
    assert redisai_fast("smartsim", "install", "--python", sys.executable, env=with_dep(dep)).returncode == 0
    run_dir = tmp_path / "run"
    (run_dir / "redisai_fast").mkdir(parents=True)
    (run_dir / "redisai_fast" / "__init__.py").write_text("raise SystemExit('imported from the run directory')\n")
    (run_dir / "numpy.py").write_text("raise SystemExit('numpy from the run directory')\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONHOME": "/nonexistent", "HOME": str(tmp_path)}
    port = free_port()
    s = Launched([str(dep / "bin" / "redis-server"), "--port", str(port), "--save", ""], run_dir, env=env)
    try:
        assert READY.search(s.log())
        r = redis.Redis(port=port)
        assert r.execute_command("AI.TENSORSET", "t", "FLOAT", 2, "VALUES", 1, 2) == b"OK"
        assert r.info("server")["process_id"] == s.proc.pid  # exec: SmartSim's PID is the server's
        r.close()
    finally:
        assert s.stop() == 0
    assert redisai_fast("smartsim", "uninstall", "--python", sys.executable, env=with_dep(dep)).returncode == 0


def test_an_unusable_redis_cli_in_bin_is_replaced(tmp_path: Path) -> None:
    dep = tmp_path / "deps"
    (dep / "bin").mkdir(parents=True)
    cli = dep / "bin" / "redis-cli"
    cli.write_text("not executable\n")
    cli.chmod(0o644)
    before = tree(dep)
    env = with_dep(dep)
    assert redisai_fast("smartsim", "install", "--python", sys.executable, env=env).returncode == 0
    assert "exec /" in cli.read_text() and cli.stat().st_mode & stat.S_IXUSR
    assert redisai_fast("smartsim", "uninstall", "--python", sys.executable, env=env).returncode == 0
    assert tree(dep) == before
