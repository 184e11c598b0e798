"""The RESP layer against a live server: pipelining, arbitrary splits, inline commands, limits,
protocol errors (reply, then close) and garbage; the server keeps serving others throughout."""

from __future__ import annotations

import random
import socket
import time

import redis

from tests.support.server import Err, RawConnection, ServerProcess, encode


def test_pipelined_commands_in_one_write(raw: RawConnection) -> None:
    raw.send(encode("PING") + encode("ECHO", "hi") + b"PING\r\n" + encode("AI.TENSORSET", "p", "INT8", 2, "VALUES", 1, 2)
             + encode("AI.TENSORGET", "p", "VALUES"))
    assert [raw.read_reply() for _ in range(5)] == ["PONG", b"hi", "PONG", "OK", [1, 2]]


def test_byte_by_byte_and_random_splits(raw: RawConnection) -> None:
    blob = bytes(range(256)) * 400  # 100 KiB: crosses the big-bulk path
    stream = encode("AI.TENSORSET", "split", "UINT8", len(blob), "BLOB", blob) + encode("AI.TENSORGET", "split", "BLOB")
    rng = random.Random(1)
    pos = 0
    while pos < len(stream):
        step = 1 if pos < 200 else rng.randint(1, 9000)
        raw.send(stream[pos:pos + step])
        pos += step
    assert raw.read_reply() == "OK"
    assert raw.read_reply() == blob


def test_inline_commands_with_quotes(raw: RawConnection) -> None:
    raw.send(b'ECHO "hello world"\r\nECHO \'a\\\'b\'\r\nECHO "\\x41\\n"\n')
    assert raw.read_reply() == b"hello world"
    assert raw.read_reply() == b"a'b"
    assert raw.read_reply() == b"A\n"


def test_empty_lines_and_empty_multibulk_are_ignored(raw: RawConnection) -> None:
    raw.send(b"\r\n\r\n*0\r\nPING\r\n")
    assert raw.read_reply() == "PONG"


def assert_protocol_error(server: ServerProcess, payload: bytes, message: str) -> None:
    c = server.raw()
    c.send(payload)
    reply = c.read_reply()
    assert isinstance(reply, Err) and reply == f"ERR Protocol error: {message}", reply
    assert c.is_closed(), "a protocol error must close the connection"
    c.close()
    # the server keeps serving other clients
    assert redis.Redis(port=server.port).ping()


def test_protocol_errors_reply_then_close(server: ServerProcess) -> None:
    assert_protocol_error(server, b"*x\r\n", "invalid multibulk length")
    assert_protocol_error(server, b"*1\r\n+OK\r\n", "expected '$', got '+'")
    assert_protocol_error(server, b"*1\r\n$-3\r\n", "invalid bulk length")
    assert_protocol_error(server, b'SET "a\r\n', "unbalanced quotes in request")
    assert_protocol_error(server, b"a" * (70 * 1024), "too big inline request")


def test_600mb_bulk_header_refused_before_allocation(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port, protocol=2)
    r.execute_command("AI.TENSORSET", "keep", "FLOAT", 1, "VALUES", 1)
    rss_before = r.info("memory")["used_memory"]
    assert_protocol_error(server, b"*3\r\n$12\r\nAI.TENSORSET\r\n$1\r\nk\r\n$629145600\r\n", "invalid bulk length")
    assert r.info("memory")["used_memory"] < rss_before + 64 * 1024 * 1024
    assert r.execute_command("AI.TENSORGET", "keep", "VALUES") == [b"1"]


def test_proto_max_bulk_len_is_configurable(server: ServerProcess) -> None:
    r = redis.Redis(port=server.port)
    r.config_set("proto-max-bulk-len", "1mb")
    try:
        c = server.raw()
        c.send(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n")
        assert c.read_reply() == "ERR Protocol error: invalid bulk length"
        assert c.is_closed()
    finally:
        r.config_set("proto-max-bulk-len", "512mb")
    assert r.config_get("proto-max-bulk-len") == {"proto-max-bulk-len": "536870912"}


def test_garbage_bytes_never_kill_the_server(server: ServerProcess) -> None:
    rng = random.Random(42)
    r = redis.Redis(port=server.port)
    r.set("survivor", "yes")
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(bytes(rng.randrange(256) for _ in range(rng.randint(1, 3000))))
        s.close()
    time.sleep(0.2)
    assert server.alive()
    assert r.get("survivor") == b"yes"


def test_client_disconnect_mid_command(server: ServerProcess) -> None:
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"*5\r\n$12\r\nAI.TENSORSET\r\n$9\r\nhalf_sent\r\n$5\r\nUINT8\r\n$6\r\n100000\r\n$4\r\nBLOB\r\n$100000\r\n"
              + b"a" * 5000)
    s.close()
    r = redis.Redis(port=server.port)
    assert r.ping()
    assert r.exists("half_sent") == 0


def test_unknown_command_and_arity(raw: RawConnection) -> None:
    assert raw.command("NOPE", "a", "b") == "ERR unknown command 'NOPE', with args beginning with: 'a' 'b' "
    assert raw.command("GET") == "ERR wrong number of arguments for 'get' command"
    assert raw.command("PING") == "PONG"  # still usable


def test_resp3_hello_and_null(raw: RawConnection) -> None:
    hello = raw.command("HELLO", "3")
    fields = dict(hello["map"])
    assert fields[b"proto"] == 3 and fields[b"server"] == b"redis"
    assert raw.command("GET", "missing") is None
    raw.send(encode("GET", "missing"))
    assert raw.sock.recv(100) == b"_\r\n"
    assert raw.command("HELLO", "2")[0] == b"server"
    raw.send(encode("GET", "missing"))
    assert raw.sock.recv(100) == b"$-1\r\n"
    assert raw.command("HELLO", "4") == "NOPROTO unsupported protocol version"


def test_many_clients_at_once(server: ServerProcess) -> None:
    conns = [server.raw() for _ in range(200)]
    for i, c in enumerate(conns):
        c.send(encode("AI.TENSORSET", f"c{i}", "INT32", 1, "VALUES", i))
    for c in conns:
        assert c.read_reply() == "OK"
    for i, c in enumerate(conns):
        assert c.command("AI.TENSORGET", f"c{i}", "VALUES") == [i]
        c.close()
