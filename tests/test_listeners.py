"""Where the server listens: TCP addresses, the Unix socket (`unixsocket`, `unixsocketperm`,
`port 0`), and protected mode for clients that are not local."""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.support.server import ServerProcess

DENIED = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    "for the default user. In this mode connections are only accepted from the loopback interface. If you "
    "want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
    "disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by "
    "connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly "
    "accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    "you can just disable the protected mode by editing the Redis configuration file, and setting the protected "
    "mode option to 'no', and then restarting the server. 3) If you started the server manually just for "
    "testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the "
    "default user. NOTE: You only need to do one of the above things in order for the server to start accepting "
    "connections from the outside."
)


def unix_server(path: Path, *args: str) -> ServerProcess:
    """A server with `--port 0` (no TCP listener) and a Unix socket."""
    return ServerProcess("--port", "0", "--unixsocket", str(path), "--save", "", *args, cwd=str(path.parent), tcp=False)


def stale_socket_file(path: Path) -> None:
    """Leaves a socket file behind, as a server that was killed does."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def test_unix_socket_only(tmp_path: Path) -> None:
    path = tmp_path / "db.sock"
    stale_socket_file(path)
    with unix_server(path, "--unixsocketperm", "755") as s:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        r = redis.Redis(unix_socket_path=str(path), decode_responses=True, protocol=2)
        assert r.ping()
        assert r.config_get("port") == {"port": "0"}
        assert r.config_get("unixsocket") == {"unixsocket": str(path)}
        assert r.config_get("unixsocketperm") == {"unixsocketperm": "755"}
        line = r.execute_command("CLIENT", "INFO")
        assert f"addr={path}:0 laddr={path}:0" in line and "flags=U" in line
        cli = subprocess.run(["redis-cli", "-s", str(path), "AI.TENSORSET", "t", "FLOAT", "2", "VALUES", "1", "2"],
                             capture_output=True, text=True, check=True)
        assert cli.stdout.strip() == "OK"
        assert r.execute_command("AI.TENSORGET", "t", "VALUES") == ["1", "2"]
        assert "ready to accept connections on" not in s.log()  # no TCP listener
        r.close()
    assert not path.exists()  # removed at shutdown


def test_unix_socket_beside_tcp_shares_the_keys_and_moves_big_replies(tmp_path: Path) -> None:
    path = tmp_path / "db.sock"
    with ServerProcess("--unixsocket", str(path), "--save", "") as s:
        tcp = redis.Redis(port=s.port)
        unix = redis.Redis(unix_socket_path=str(path))
        big = np.arange(4 << 20, dtype=np.float32)  # 16 MiB each way
        assert unix.execute_command("AI.TENSORSET", "big", "FLOAT", big.size, "BLOB", big.tobytes())
        blob = tcp.execute_command("AI.TENSORGET", "big", "BLOB")
        assert blob == big.tobytes()
        assert unix.execute_command("AI.TENSORGET", "big", "BLOB") == big.tobytes()
        # a pipeline over the socket answers in order
        pipe = unix.pipeline(transaction=False)
        for i in range(200):
            pipe.set(f"k{i}", i)
            pipe.get(f"k{i}")
        assert pipe.execute()[1::2] == [str(i).encode() for i in range(200)]
        tcp.close()
        unix.close()


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def reply_of(sock: socket.socket, command: bytes) -> bytes:
    sock.sendall(command)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def is_closed(sock: socket.socket) -> bool:
    """The server closed the connection (EOF, or a reset because our PING was left unread)."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_protected_mode_refuses_clients_that_are_not_local(tmp_path: Path) -> None:
    path = tmp_path / "db.sock"
    with ServerProcess("--unixsocket", str(path), "--save", "") as s:
        r = redis.Redis(port=s.port, decode_responses=True)
        assert r.config_get("protected-mode") == {"protected-mode": "yes"}
        before = r.info("stats")["rejected_connections"]
        far = connect_from("127.0.0.2", s.port)
        assert reply_of(far, b"PING\r\n") == f"-{DENIED}\r\n".encode()
        assert is_closed(far)
        far.close()
        assert r.info("stats")["rejected_connections"] == before + 1
        # local clients: 127.0.0.1 and the Unix socket
        assert reply_of(connect_from("127.0.0.1", s.port), b"PING\r\n") == b"+PONG\r\n"
        assert redis.Redis(unix_socket_path=str(path)).ping()
        # a password for the default user lets others in (they must AUTH)
        r.config_set("requirepass", "s3cret")
        far = connect_from("127.0.0.2", s.port)
        assert reply_of(far, b"PING\r\n").startswith(b"-NOAUTH")
        assert reply_of(far, b"AUTH s3cret\r\n") == b"+OK\r\n"
        far.close()
        r.execute_command("AUTH", "s3cret")
        r.config_set("requirepass", "")
        # and so does turning protected mode off
        r.config_set("protected-mode", "no")
        assert reply_of(connect_from("127.0.0.2", s.port), b"PING\r\n") == b"+PONG\r\n"
        r.close()


def test_protected_mode_off_from_the_command_line() -> None:
    with ServerProcess("--protected-mode", "no") as s:
        assert reply_of(connect_from("127.0.0.2", s.port), b"PING\r\n") == b"+PONG\r\n"


def test_optional_bind_address_is_skipped_when_missing() -> None:
    # 192.0.2.1 (TEST-NET) is on no interface here: `-` makes it optional, as in Redis
    with ServerProcess("--bind", "127.0.0.1", "-192.0.2.1") as s:
        assert redis.Redis(port=s.port).ping()
        assert "Skipping optional address 192.0.2.1" in s.log()


def test_a_missing_mandatory_bind_address_stops_the_start() -> None:
    with pytest.raises(RuntimeError, match="Could not create server TCP listening socket 192.0.2.1"):
        ServerProcess("--bind", "192.0.2.1").start()


def test_an_unusable_socket_path_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "db.sock"
    with pytest.raises(RuntimeError, match="Failed opening Unix socket"):
        ServerProcess("--unixsocket", str(path)).start()
