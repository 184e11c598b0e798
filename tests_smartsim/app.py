"""The application a SmartSim experiment runs in the tests (with the SmartSim venv's python): it
reaches its database the way every SmartSim application does (`Client(cluster=False)`, which reads
SSDB), uses tensors, a TorchScript and an ONNX model, a script and a dataset, and writes what it saw
to a JSON file for the test to check. Usage: app.py RESULTS.json TORCH_MODEL ONNX_MODEL"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import redis
from smartredis import Client, Dataset

SCRIPT = "def twice(a):\n    return a * 2\n"


def database_pid() -> int:
    """The server's own process id (INFO server), asked at SSDB: the test checks it is gone later."""
    ssdb = os.environ["SSDB"]
    if ssdb.startswith("unix://"):
        r = redis.Redis(unix_socket_path=ssdb[len("unix://"):])
    else:
        host, port = ssdb.rsplit(":", 1)
        r = redis.Redis(host=host, port=int(port))
    pid = int(r.info("server")["process_id"])
    r.close()
    return pid


def main(results_path: str, torch_model: str, onnx_model: str) -> None:
    # SmartRedis logs each re-sent command ("Redis IO error when executing command") at INFO
    log_file = Path(results_path).with_suffix(".smartredis.log")
    os.environ["SR_LOG_FILE"] = str(log_file)
    os.environ["SR_LOG_LEVEL"] = "INFO"
    out: dict[str, object] = {"ssdb": os.environ.get("SSDB", "")}
    client = Client(cluster=False)
    out["server_pid"] = database_pid()

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    client.put_tensor("a", a)
    out["tensor"] = client.get_tensor("a").tolist()

    t0 = time.monotonic()
    client.set_model_from_file("torch_lin", torch_model, "TORCH", device="CPU")
    out["torch_store_s"] = time.monotonic() - t0
    client.run_model("torch_lin", inputs=["a"], outputs=["torch_y"])
    out["torch_y"] = client.get_tensor("torch_y").tolist()

    t0 = time.monotonic()
    client.set_model_from_file("onnx_lin", onnx_model, "ONNX", device="CPU")
    out["onnx_store_s"] = time.monotonic() - t0
    client.run_model("onnx_lin", inputs=["a"], outputs=["onnx_y"])
    out["onnx_y"] = client.get_tensor("onnx_y").tolist()

    client.set_script("s", SCRIPT, device="CPU")
    client.run_script("s", "twice", ["a"], ["a2"])
    out["script_y"] = client.get_tensor("a2").tolist()

    ds = Dataset("ds")
    ds.add_tensor("x", a)
    ds.add_meta_string("note", "from the app")
    ds.add_meta_scalar("step", np.int64(7))
    client.put_dataset(ds)
    got = client.get_dataset("ds")
    out["dataset"] = {
        "exists": client.dataset_exists("ds"),
        "x": got.get_tensor("x").tolist(),
        "note": got.get_meta_strings("note"),
        "step": [int(v) for v in got.get_meta_scalars("step")],
    }
    del client
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    out["resent"] = [ln.strip() for ln in text.splitlines() if "error when executing command" in ln]
    Path(results_path).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])
