"""The `redisai-fast` command: parses flags and the config file, then runs the server."""

from __future__ import annotations

import argparse
import logging
import sys

from redisai_fast.config import ConfigFileError, read_config_file

LOGLEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "nothing": logging.CRITICAL + 10,
}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[tuple[str, str]]]:
    """Known flags plus any other `--option value` pair (same names as CONFIG and the config file)."""
    p = argparse.ArgumentParser(
        prog="redisai-fast",
        description="A RedisAI-compatible model server. Any server option can be given as --name value.",
    )
    p.add_argument("--port", help="TCP port (default 6379; 0 picks a free one)")
    p.add_argument("--bind", help="addresses to listen on, space separated (default 127.0.0.1)")
    p.add_argument("--requirepass", help="password clients must AUTH with")
    p.add_argument("--config", help="redis.conf-style file of `directive value` lines")
    p.add_argument("--loglevel", help="debug | verbose | notice | warning | nothing")
    p.add_argument("--dir", help="directory for the snapshot and the AOF (default: the working directory)")
    p.add_argument("--dbfilename", help="snapshot file name (default dump.snapshot)")
    p.add_argument("--appendfilename", help="AOF file name (default appendonly.aof)")
    args, rest = p.parse_known_args(argv)
    extra: list[tuple[str, str]] = []
    i = 0
    while i < len(rest):
        flag = rest[i]
        if not flag.startswith("--") or i + 1 >= len(rest):
            p.error(f"expected --option value, got {flag!r}")
        extra.append((flag[2:], rest[i + 1]))
        i += 2
    return args, extra


def check_command(argv: list[str]) -> int:
    """`redisai-fast check-aof [--fix] FILE` / `redisai-fast check-snapshot FILE`."""
    from redisai_fast import _core

    p = argparse.ArgumentParser(prog=f"redisai-fast {argv[0]}")
    p.add_argument("file")
    if argv[0] == "check-aof":
        p.add_argument("--fix", action="store_true", help="truncate an incomplete last command")
    args = p.parse_args(argv[1:])
    try:
        if argv[0] == "check-aof":
            print(_core.check_aof(args.file, args.fix))
        else:
            print(_core.check_snapshot(args.file))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("check-aof", "check-snapshot"):
        return check_command(argv)
    args, extra = parse_args(argv)
    options: list[tuple[str, str]] = []
    if args.config:
        try:
            options += read_config_file(args.config)
        except (OSError, ConfigFileError) as exc:
            print(f"redisai-fast: cannot read config: {exc}", file=sys.stderr)
            return 2
    for name in ("port", "bind", "requirepass", "loglevel", "dir", "dbfilename", "appendfilename"):
        value = getattr(args, name)
        if value is not None:
            options.append((name, value))
    options += extra
    level = "notice"
    for name, value in options:
        if name.lower() == "loglevel":
            level = value.lower()
    logging.basicConfig(
        level=LOGLEVELS.get(level, logging.INFO),
        format="%(process)d:M %(asctime)s.%(msecs)03d %(levelname).1s %(message)s",
        datefmt="%d %b %Y %H:%M:%S",
    )
    from redisai_fast.server.app import run

    try:
        return run(options)
    except ValueError as exc:
        print(f"redisai-fast: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
