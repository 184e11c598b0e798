"""Runs the benchmark suites side by side with redis-server and writes the report:
`python benches/run.py [tensors|models|dag|persistence|tls ...] [--quick]` prints each suite's output
and writes `benches/results/report-<date>.md` with its tables and PNG charts (see report.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SUITES = {"tensors": "tensors.py", "models": "models.py", "dag": "dag.py", "persistence": "persistence.py",
          "memory": "memory.py", "store": "store.py", "unix": "unix.py", "pyapi": "pyapi.py", "tls": "tls.py",
          "redisai": "redisai.py"}
# the options each suite takes (give them as --name or --name=value)
ACCEPTS = {"tensors": {"--quick", "--repeat", "--sizes"}, "models": {"--quick"}, "dag": {"--quick"},
           "persistence": {"--quick", "--repeat"}, "store": {"--quick", "--repeat", "--part", "--share"},
           "memory": {"--quick", "--repeat"}, "unix": {"--quick", "--repeat"}, "pyapi": {"--quick", "--repeat"},
           "tls": {"--quick", "--repeat"}, "redisai": {"--quick", "--repeat", "--peer"}}

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from report import write_report

    names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(SUITES)
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    runs = []
    for name in names:
        mine = [f for f in flags if f.split("=", 1)[0] in ACCEPTS[name]]
        cmd = [sys.executable, str(here / SUITES[name]), *mine]
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            json_path = Path(f.name)
        env = {**os.environ, "BENCH_JSON": str(json_path)}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            output.append(line)
        if proc.wait() != 0:
            raise SystemExit(f"{name} failed with exit code {proc.returncode}")
        data = json.loads(json_path.read_text()) if json_path.stat().st_size else None
        json_path.unlink()
        shown = " ".join(["python", f"benches/{SUITES[name]}", *mine])
        runs.append({"suite": name, "command": shown, "output": "".join(output), "json": data})
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    for run in runs:
        # kept so the report and its charts can be made again: python benches/report.py DATE
        (here / "results" / f"bench-{run['suite']}-{date}.json").write_text(json.dumps(run, indent=1))
    report = write_report(date, runs)
    print(f"\nreport: {report.relative_to(here.parent)}")
