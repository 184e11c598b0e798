"""The spec's tensor transcripts, replayed with the real `redis-cli` and compared character for character."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.server import ServerProcess

# (command, expected redis-cli output) exactly as in the command reference's examples
TRANSCRIPTS = [
    ("AI.TENSORSET mytensor FLOAT 2 2 VALUES 1 2 3 4", "OK"),
    (
        "AI.TENSORGET mytensor META",
        '1) "dtype"\n2) "FLOAT"\n3) "shape"\n4) 1) (integer) 2\n   2) (integer) 2',
    ),
    ("AI.TENSORGET mytensor VALUES", '1) "1"\n2) "2"\n3) "3"\n4) "4"'),
    ("AI.TENSORGET mytensor BLOB", '"\\x00\\x00\\x80?\\x00\\x00\\x00@\\x00\\x00@@\\x00\\x00\\x80@"'),
    (
        "AI.TENSORGET mytensor META VALUES",
        (
            '1) "dtype"\n2) "FLOAT"\n3) "shape"\n4) 1) (integer) 2\n   2) (integer) 2\n5) "values"\n'
            '6) 1) "1"\n   2) "2"\n   3) "3"\n   4) "4"'
        ),
    ),
    (
        "AI.TENSORGET mytensor META BLOB",
        (
            '1) "dtype"\n2) "FLOAT"\n3) "shape"\n4) 1) (integer) 2\n   2) (integer) 2\n5) "blob"\n'
            '6) "\\x00\\x00\\x80?\\x00\\x00\\x00@\\x00\\x00@@\\x00\\x00\\x80@"'
        ),
    ),
    ("TYPE mytensor", "AI_TENSOR"),
]


def cli(port: int, line: str, *extra: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "--no-raw", *extra, *line.split()],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.rstrip("\n")


@pytest.fixture(scope="module")
def cli_server():
    with ServerProcess() as s:
        yield s


@pytest.mark.parametrize("command,expected", TRANSCRIPTS, ids=[t[0] for t in TRANSCRIPTS])
def test_spec_transcript(cli_server: ServerProcess, command: str, expected: str) -> None:
    assert cli(cli_server.port, command) == expected


def test_transcript_as_one_session_via_stdin(cli_server: ServerProcess) -> None:
    """redis-cli reading commands from stdin (one connection, pipelined)."""
    script = "\n".join(c for c, _ in TRANSCRIPTS) + "\n"
    out = subprocess.run(["redis-cli", "-p", str(cli_server.port), "--no-raw"], input=script,
                         capture_output=True, text=True, timeout=20, check=False)
    assert out.stdout.rstrip("\n") == "\n".join(e for _, e in TRANSCRIPTS)


def test_cli_errors_are_printed_like_redis(cli_server: ServerProcess) -> None:
    assert cli(cli_server.port, "AI.TENSORGET missing") == "(error) ERR tensor key is empty or in a different shard"
    assert cli(cli_server.port, "AI.TENSORSET x INT128 1") == "(error) ERR invalid data type"


def test_cli_resp3(cli_server: ServerProcess) -> None:
    cli(cli_server.port, "AI.TENSORSET d DOUBLE 2 VALUES 1.5 2")
    assert cli(cli_server.port, "AI.TENSORGET d VALUES", "-3") == "1) (double) 1.5\n2) (double) 2"


def test_cli_pipe_mode_with_blob(cli_server: ServerProcess) -> None:
    """`redis-cli -x` sends stdin as the last argument (how the spec stores model blobs)."""
    data = bytes(range(16))
    out = subprocess.run(["redis-cli", "-p", str(cli_server.port), "-x", "AI.TENSORSET", "fromstdin", "UINT8", "16", "BLOB"],
                         input=data, capture_output=True, timeout=20, check=False)
    assert out.stdout.strip() == b"OK"
    out = subprocess.run(["redis-cli", "-p", str(cli_server.port), "--raw", "AI.TENSORGET", "fromstdin", "BLOB"],
                         capture_output=True, timeout=20, check=False)
    assert out.stdout[:-1] == data
