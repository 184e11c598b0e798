"""redisai-py 1.3.0 over TLS (its redis-py 4.6 `ssl=True` underneath) and with an ACL user."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest

from tests.support.server import ServerProcess
from tests.support.tls import make_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command makes the test CA")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensors_and_models_over_tls_as_an_acl_user(tmp_path, model_blob) -> None:
    import redisai

    pki = make_pki(tmp_path)
    port = free_port()
    with ServerProcess("--tls-port", str(port), "--tls-cert-file", str(pki.server_cert), "--tls-key-file",
                       str(pki.server_key), "--tls-ca-cert-file", str(pki.ca)) as s:
        admin = redisai.Client(port=s.port)
        assert admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~app:*", "+@all", "-@aistore") == b"OK"
        con = redisai.Client(port=port, ssl=True, ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert),
                             ssl_keyfile=str(pki.client_key), username="app", password="pw")
        a = np.arange(1 << 18, dtype=np.float32).reshape(512, 512)
        assert con.tensorset("app:x", a) == "OK"
        np.testing.assert_array_equal(con.tensorget("app:x"), a)
        assert admin.modelstore("app:m", "ONNX", "CPU", model_blob("onnx_linear")) == "OK"
        con.tensorset("app:in", np.ones((2, 4), dtype=np.float32))
        assert con.modelexecute("app:m", inputs=["app:in"], outputs=["app:out"]) == "OK"
        assert con.tensorget("app:out").shape == (2, 3)
        with pytest.raises(Exception, match="no permissions to run the 'ai.modelstore' command"):
            con.modelstore("app:m2", "ONNX", "CPU", model_blob("onnx_linear"))
        with pytest.raises(Exception, match="no permissions to access one of the keys"):
            con.tensorget("other")
