"""Runs the benchmark suites side by side with redis-server: `python benches/run.py [tensors] [--quick]`."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

SUITES = {"tensors": "tensors.py", "models": "models.py", "dag": "dag.py", "persistence": "persistence.py",
          "memory": "memory.py", "store": "store.py", "unix": "unix.py", "pyapi": "pyapi.py"}

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(SUITES)
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    for name in names:
        sys.argv = [SUITES[name], *flags]
        runpy.run_path(str(here / SUITES[name]), run_name="__main__")
