"""Fixtures for the SmartSim suite (runs in .venv-smartsim, SmartSim 0.8.0 + SmartRedis 0.6.1):
`redisai-fast smartsim install` into this venv's SmartSim for the session and `uninstall` at its end
(checked to leave the package as it was), the test models made by the server venv, and the test
settings for SmartSim's polling."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, redisai_fast, server_python, tree


@dataclass
class Site:
    """The SmartSim installation of this venv, with redisai-fast installed into it."""

    dep: Path  # SmartSim's dependency path (its package's _core/ here)
    install_output: str

    @property
    def launcher(self) -> Path:
        return self.dep / "bin" / "redis-server"

    @property
    def redisai_so(self) -> Path:
        return self.dep / "lib" / "redisai.so"

    @property
    def conf(self) -> Path:
        return self.dep / "config" / "redis.conf"


@pytest.fixture(scope="session")
def site():
    from smartsim._core.config import CONFIG

    dep = Path(CONFIG.dependency_path)
    before = tree(dep)
    done = redisai_fast("smartsim", "install", "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    yield Site(dep, done.stdout)
    undone = redisai_fast("smartsim", "uninstall", "--python", sys.executable)
    assert undone.returncode == 0, undone.stderr
    assert tree(dep) == before, "uninstall did not leave SmartSim's package as it was"


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """{"torch": path, "onnx": path}: tests/support/models.py's linear models, made by the server venv."""
    d = tmp_path_factory.mktemp("models")
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.support import models; "
        f"open({str(d / 'lin.pt')!r}, 'wb').write(models.torch_linear()); "
        f"open({str(d / 'lin.onnx')!r}, 'wb').write(models.onnx_linear())"
    )
    subprocess.run([server_python(), "-W", "ignore", "-c", code], check=True, timeout=300)
    return {"torch": d / "lin.pt", "onnx": d / "lin.onnx"}


@pytest.fixture
def smartsim_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test settings only (users need none): SmartSim polls its jobs every second instead of 10,
    and its telemetry monitor exits 1 s after the last job instead of 90."""
    monkeypatch.setenv("SMARTSIM_JM_INTERVAL", "1")
    monkeypatch.setenv("SMARTSIM_TELEMETRY_COOLDOWN", "1")
    for name in ("SMARTSIM_DEP_INSTALL_PATH", "REDIS_PATH", "REDIS_CLI_PATH", "RAI_PATH", "REDIS_CONF", "SSDB"):
        monkeypatch.delenv(name, raising=False)


