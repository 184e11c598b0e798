"""The Python API's documentation runs: every example of the README's "Python API" section (each
in a fresh interpreter; a block named `# test_*.py` is run by pytest, with the plugin's fixtures),
and the docstring examples of the modules."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import redisai_fast
from redisai_fast import database, process

README = Path(__file__).resolve().parent.parent / "README.md"


def examples() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(examples()) == 5


@pytest.mark.parametrize("code", examples(), ids=lambda c: c.splitlines()[0][:40])
def test_readme_example(code: str, tmp_path: Path) -> None:
    first = code.splitlines()[0]
    if first.startswith("# test_"):
        (tmp_path / first[2:].strip()).write_text(code)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    else:
        cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_docstring_examples() -> None:
    with redisai_fast.open() as db:
        for module in (database, process):
            result = doctest.testmod(module, extraglobs={"db": db, "np": np, "redisai_fast": redisai_fast})
            assert result.failed == 0 and result.attempted > 0, module.__name__
