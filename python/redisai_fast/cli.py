"""The `redisai-fast` command: redis-server's command line (config file, `--name value` options,
`--loadmodule`), then runs the server; also the `check-aof`, `check-snapshot` and `smartsim`
subcommands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import ClassVar

from redisai_fast import __version__
from redisai_fast.config import ConfigFileError, Directive, load

LOGLEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "nothing": logging.CRITICAL + 10,
}

USAGE = """\
Usage: redisai-fast [/path/to/redis.conf] [options] [-]
       redisai-fast -v or --version
       redisai-fast -h or --help
       redisai-fast check-aof [--fix] FILE | check-snapshot FILE
       redisai-fast smartsim install|uninstall [--python PY]

Options are redis.conf directives: --port 7000 --bind 127.0.0.1 ::1 --unixsocket /tmp/ai.sock
--save "" --loadmodule /path/to/redisai.so THREADS_PER_QUEUE 2 ...  (`-` reads the config from
standard input). `--port auto` listens on a free port, `--port 0` on no TCP port.
"""

# RedisAI's module arguments (`--loadmodule redisai.so NAME VALUE ...`) that are server options
MODULE_OPTIONS = {
    "THREADS_PER_QUEUE",
    "INTER_OP_PARALLELISM",
    "INTRA_OP_PARALLELISM",
    "BACKENDSPATH",
    "MODEL_CHUNK_SIZE",
    "MODEL_EXECUTION_TIMEOUT",
    "BACKEND_MEMORY_LIMIT",
}
# ... and those that load a backend at start, as RedisAI does
MODULE_BACKENDS = {"TF", "TFLITE", "TORCH", "ONNX"}


@dataclass
class Startup:
    """What the command line asks for: the core's options, in order, and backends to load."""

    options: list[tuple[str, str | list[str]]] = field(default_factory=list)
    sources: list[Directive] = field(default_factory=list)
    backends: list[tuple[str, str]] = field(default_factory=list)


def startup_from(directives: list[Directive]) -> Startup:
    """Turns directives into core options: `loadmodule` becomes RedisAI's options and backends,
    `save` lines add up as in redis.conf (the first replaces the default rules, `save ""` clears)."""
    s = Startup()
    save: list[str] | None = None
    save_at: Directive | None = None
    for d in directives:
        if d.name == "loadmodule":
            _load_module(d, s)
        elif d.name == "save":
            save = [] if d.args == [""] else (save or []) + d.args
            save_at = save_at or d
        else:
            s.options.append((d.name, d.args))
            s.sources.append(d)
    if save_at is not None:
        s.options.append(("save", [" ".join(save or [])]))
        s.sources.append(save_at)
    return s


def _load_module(d: Directive, s: Startup) -> None:
    """`loadmodule PATH [NAME VALUE ...]`: any module file selects the built-in AI engine (this
    server is RedisAI); its arguments are read as RedisAI reads them."""
    if not d.args:
        raise ConfigFileError(f"{d.source}: loadmodule needs a module path\n>>> '{d.text}'")
    path, rest = d.args[0], d.args[1:]
    if not os.path.exists(path):
        raise ConfigFileError(f"{d.source}: Module {path} failed to load: No such file or directory\n>>> '{d.text}'")
    if len(rest) % 2:
        raise ConfigFileError(
            f"{d.source}: Even number of arguments provided to module. "
            f"Please provide arguments as KEY VAL pairs\n>>> '{d.text}'"
        )
    for name, value in zip(rest[0::2], rest[1::2]):
        key = name.upper()
        if key in MODULE_OPTIONS:
            s.options.append((key.lower(), value))
            s.sources.append(d)
        elif key in MODULE_BACKENDS:
            s.backends.append((key, value))
        else:
            raise ConfigFileError(f"{d.source}: ERR: error processing argument: {name} {value}\n>>> '{d.text}'")


def fatal_config_error(message: str, directive: Directive | None = None) -> int:
    """Redis's start-up report of a bad configuration; the exit code."""
    print(f"\n*** FATAL CONFIG FILE ERROR (redisai-fast {__version__}) ***", file=sys.stderr)
    if directive is not None:
        print(f"Reading the configuration file, at {directive.source}", file=sys.stderr)
        print(f">>> '{directive.text}'", file=sys.stderr)
    print(message, file=sys.stderr)
    return 1


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


class JsonFormatter(logging.Formatter):
    """`log-format json`: one JSON object per line (time, pid, role, level, message)."""

    LEVELS: ClassVar[dict[int, str]] = {logging.DEBUG: "debug", logging.INFO: "notice", logging.WARNING: "warning"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "pid": os.getpid(),
            "role": "master",
            "level": self.LEVELS.get(record.levelno, "error"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(options: list[tuple[str, str | list[str]]]) -> None:
    """`loglevel`, `logfile` (empty: standard output) and `log-format` (`legacy` text lines or
    `json`), the last one given wins."""
    level, logfile, log_format = "notice", "", "legacy"
    for name, value in options:
        one = value if isinstance(value, str) else " ".join(value)
        if name == "loglevel":
            level = one.lower()
        elif name == "logfile":
            logfile = one
        elif name == "log-format":
            log_format = one.lower()
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(process)d:M %(asctime)s.%(msecs)03d %(levelname).1s %(message)s", "%d %b %Y %H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LOGLEVELS.get(level, logging.INFO))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("check-aof", "check-snapshot"):
        return check_command(argv)
    if argv and argv[0] == "smartsim":
        from redisai_fast.smartsim import main as smartsim_main

        return smartsim_main(argv[1:])
    if argv and argv[0] in ("-v", "--version"):
        print(f"redisai-fast v={__version__} (Redis protocol 7.0, RedisAI 1.2.7 commands)")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    try:
        startup = startup_from(load(argv))
    except ConfigFileError as exc:
        return fatal_config_error(str(exc))
    try:
        setup_logging(startup.options)
    except OSError as exc:
        return fatal_config_error(f"Can't open the log file: {exc.strerror}")
    from redisai_fast.server.app import run

    try:
        return run(startup.options, startup.backends)
    except ValueError as exc:
        if len(exc.args) == 2 and isinstance(exc.args[1], int):
            return fatal_config_error(exc.args[0], startup.sources[exc.args[1]])
        print(f"redisai-fast: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
