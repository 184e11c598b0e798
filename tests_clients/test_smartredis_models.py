"""SmartRedis 0.6.1 models against redisai-fast (non-cluster): set_model/run_model/model_exists,
get_model, delete_model, and the AI.CONFIG GET MODEL_CHUNK_SIZE it asks before every upload."""

from __future__ import annotations

import numpy as np
import pytest
import redis
from smartredis import Client

from tests.support.models import linear_expected
from tests.support.server import ServerProcess


@pytest.fixture
def client(server):
    c = Client(address=f"127.0.0.1:{server.port}", cluster=False)
    c.flush_db([f"127.0.0.1:{server.port}"])
    return c


@pytest.mark.parametrize("backend,name", [("ONNX", "onnx_linear"), ("TORCH", "torch_linear")])
def test_set_run_model(client, model_blob, backend, name) -> None:
    client.set_model("m", model_blob(name), backend, device="CPU")
    assert client.model_exists("m")
    assert client.poll_model("m", 10, 5)
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 1]], dtype=np.float32)
    client.put_tensor("x", x)
    client.run_model("m", inputs=["x"], outputs=["y"])
    np.testing.assert_allclose(client.get_tensor("y"), linear_expected(x), rtol=1e-6)
    assert client.get_model("m") == model_blob(name)
    client.delete_model("m")
    assert not client.model_exists("m")


def test_tf_model_with_names(client, model_blob) -> None:
    client.set_model("tf", model_blob("tf_mul"), "TF", device="CPU", inputs=["a", "b"], outputs=["mul"])
    client.put_tensor("a", np.array([2, 3], dtype=np.float32))
    client.put_tensor("b", np.array([2, 3], dtype=np.float32))
    client.run_model("tf", inputs=["a", "b"], outputs=["c"])
    np.testing.assert_array_equal(client.get_tensor("c"), np.array([4, 9], dtype=np.float32))


SLOW_ADAPTER = '''
"""A TORCH adapter whose every load takes longer than SmartRedis's 250 ms socket timeout."""
import time
from pathlib import Path

import numpy as np

LOADS = Path(__file__).with_suffix(".loads")


class Identity:
    input_names = ["x"]
    output_names = ["y"]

    def run(self, inputs):
        return [np.ascontiguousarray(np.asarray(inputs[0]))]


class Slow:
    name = "TORCH"

    def version(self):
        return "slow-test"

    def load(self, blob, device, inputs, outputs):
        with open(LOADS, "a") as f:
            f.write("load\\n")
        time.sleep(0.6)
        return Identity()


def create(options):
    return Slow()
'''


def test_a_store_resent_after_the_socket_timeout_is_answered_without_loading_again(tmp_path, capfd) -> None:
    """SmartRedis gives up on a reply after SR_SOCKET_TIMEOUT (250 ms), waits SR_CMD_INTERVAL (1 s)
    and sends the command again on a new connection. A model that takes 600 ms to load used to be
    loaded again for every re-send, so no try was ever answered in time (SmartRedis gives up after
    100 tries); a store of the model the key already holds now answers OK at once."""
    adapter = tmp_path / "slow_adapter.py"
    adapter.write_text(SLOW_ADAPTER)
    # SmartRedis logs each failed try at its default level (INFO), to standard output unless
    # SR_LOG_FILE was set when the process made its first client
    with ServerProcess("--save", "", cwd=str(tmp_path)) as s:
        r = redis.Redis(port=s.port)
        assert r.execute_command("AI.CONFIG", "LOADBACKEND", "TORCH", str(adapter)) == b"OK"
        client = Client(address=f"127.0.0.1:{s.port}", cluster=False)
        client.set_model("m", b"any bytes", "TORCH", device="CPU")
        resent = [ln for ln in capfd.readouterr().out.splitlines() if "error when executing command" in ln]
        assert len(resent) == 1, resent  # the first try timed out; the second found the model stored
        assert adapter.with_suffix(".loads").read_text() == "load\n"
        client.put_tensor("x", np.arange(3, dtype=np.float32))
        client.run_model("m", inputs=["x"], outputs=["y"])
        np.testing.assert_array_equal(client.get_tensor("y"), np.arange(3, dtype=np.float32))
        # a different blob under the same key is loaded (and re-sent once more)
        client.set_model("m", b"other bytes", "TORCH", device="CPU")
        assert adapter.with_suffix(".loads").read_text() == "load\nload\n"
        r.close()
