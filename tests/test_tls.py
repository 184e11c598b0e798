"""TLS on `tls-port` beside the plain port: redis-py `ssl=True` and redis-cli `--tls` with a test CA,
client certificates under `tls-auth-clients yes|optional|no`, large tensors both ways, and plaintext
or unknown clients dropped without harm."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.support.server import ServerProcess
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_server(pki: Pki, auth: str) -> tuple[ServerProcess, int]:
    port = free_port()
    s = ServerProcess("--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                      str(pki.server_key), "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", auth)
    return s.start(), port


def client(pki: Pki, port: int, cert: Path | None = None, key: Path | None = None) -> redis.Redis:
    return redis.Redis(port=port, ssl=True, ssl_ca_certs=str(pki.ca), ssl_certfile=str(cert) if cert else None,
                       ssl_keyfile=str(key) if key else None, socket_timeout=10)


@pytest.fixture(scope="module")
def mutual(pki: Pki):
    s, port = tls_server(pki, "yes")
    yield s, port
    s.stop()


def test_redis_py_over_tls_with_a_client_certificate(pki: Pki, mutual: tuple[ServerProcess, int]) -> None:
    s, port = mutual
    r = client(pki, port, pki.client_cert, pki.client_key)
    assert r.ping() is True
    for n in (4096, 1 << 20, 16 << 20):
        data = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8).tobytes()
        assert r.execute_command("AI.TENSORSET", "t", "UINT8", n, "BLOB", data) == b"OK"
        assert r.execute_command("AI.TENSORGET", "t", "BLOB") == data
        r.set("s", data)
        assert r.get("s") == data
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"k{i}", i)
    assert pipe.execute() == [True] * 200
    assert redis.Redis(port=s.port).get("k199") == b"199", "the plain port serves the same data"
    r.close()


def test_unknown_or_missing_client_certificates_are_refused(pki: Pki, mutual: tuple[ServerProcess, int]) -> None:
    s, port = mutual
    for cert, key in ((pki.stranger_cert, pki.stranger_key), (None, None)):
        r = client(pki, port, cert, key)
        with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
            r.ping()
        r.close()
    assert client(pki, port, pki.client_cert, pki.client_key).ping() is True
    assert s.alive()


def test_plaintext_client_on_the_tls_port_is_dropped(pki: Pki, mutual: tuple[ServerProcess, int]) -> None:
    s, port = mutual
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        got = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    assert b"PONG" not in got
    assert s.alive()
    assert client(pki, port, pki.client_cert, pki.client_key).ping() is True
    assert redis.Redis(port=s.port).ping() is True


def test_optional_and_no_client_authentication(pki: Pki) -> None:
    for auth in ("optional", "no"):
        s, port = tls_server(pki, auth)
        try:
            assert client(pki, port).ping() is True
            assert client(pki, port, pki.client_cert, pki.client_key).ping() is True
            if auth == "optional":
                with pytest.raises((redis.ConnectionError, ssl.SSLError, OSError)):
                    client(pki, port, pki.stranger_cert, pki.stranger_key).ping()
        finally:
            s.stop()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed (make test installs it)")
def test_redis_cli_tls(pki: Pki, mutual: tuple[ServerProcess, int]) -> None:
    _, port = mutual
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--tls", "--cacert", str(pki.ca), "--cert", str(pki.client_cert),
         "--key", str(pki.client_key), "AI.TENSORSET", "x", "FLOAT", "2", "VALUES", "1", "2"],
        check=False, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "OK", out.stderr
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--tls", "--cacert", str(pki.ca), "--cert", str(pki.client_cert),
         "--key", str(pki.client_key), "AI.TENSORGET", "x", "VALUES"],
        check=False, capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["1", "2"], out.stderr


def test_bad_tls_configuration_stops_the_start(pki: Pki) -> None:
    port = free_port()
    s = ServerProcess("--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                      str(pki.server_key))
    with pytest.raises(RuntimeError, match="tls-ca-cert-file or tls-ca-cert-dir must be specified"):
        s.start()
    s = ServerProcess("--tls-port", str(port), "--tls-cert-file", "/nonexistent.crt", "--tls-key-file",
                      str(pki.server_key), "--tls-auth-clients", "no")
    with pytest.raises(RuntimeError, match="Failed to load certificate /nonexistent.crt"):
        s.start()
    s = ServerProcess("--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                      str(pki.server_key), "--tls-auth-clients", "no", "--tls-ciphersuites", "TLS_NOPE")
    with pytest.raises(RuntimeError, match="Unsupported TLS cipher suite 'TLS_NOPE'"):
        s.start()


def test_protocols_and_suites(pki: Pki) -> None:
    port = free_port()
    s = ServerProcess("--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                      str(pki.server_key), "--tls-auth-clients", "no", "--tls-protocols", "TLSv1.3",
                      "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256").start()
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
            tls.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert tls.recv(64) == b"+PONG\r\n"
        ctx12 = ssl.create_default_context(cafile=str(pki.ca))
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, pytest.raises(ssl.SSLError):
            ctx12.wrap_socket(raw, server_hostname="localhost")
    finally:
        s.stop()


def test_encrypted_server_key(pki: Pki) -> None:
    port = free_port()
    args = ["--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
            str(pki.server_key_encrypted), "--tls-auth-clients", "no"]
    s = ServerProcess(*args, "--tls-key-file-pass", pki.passphrase).start()
    try:
        assert client(pki, port).ping() is True
    finally:
        s.stop()
    with pytest.raises(RuntimeError, match="wrong tls-key-file-pass"):
        ServerProcess(*args, "--tls-key-file-pass", "not it").start()


def test_tls_only_with_port_0(pki: Pki) -> None:
    """`port 0` opens no TCP listener: the TLS port is the only way in."""
    port = free_port()
    with ServerProcess("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(pki.server_cert),
                       "--tls-key-file", str(pki.server_key), "--tls-auth-clients", "no") as s:
        assert s.port == port, "the first (and only) listener is the TLS one"
        assert f"ready to accept connections on 127.0.0.1:{port} (TLS)" in s.log()
        r = client(pki, port)
        assert r.set("k", "v") is True and r.get("k") == b"v"
        r.close()
