"""redis-server's command line and redis.conf files, read as Redis reads them: into directives
(name, arguments, where they came from). The core decides which names exist and what they mean."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


class ConfigFileError(ValueError):
    """A configuration line that cannot be read (the message says where)."""


@dataclass
class Directive:
    name: str
    """Lower case, as redis.conf spells it."""
    args: list[str]
    source: str
    """`path:line` or `command line`, for error messages."""
    text: str
    """The line as given."""


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}


def split_args(line: str) -> list[str]:
    """Splits one config line into arguments with Redis's quoting rules (`sdssplitargs`):
    "double quotes" take `\\n \\r \\t \\b \\a \\xHH` and `\\<char>` escapes, 'single quotes' only
    `\\'`, and a closing quote must end the argument. Raises ConfigFileError on unbalanced quotes."""
    args: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return args
        cur: list[str] = []
        quote = ""
        while True:
            if quote == '"':
                if i >= n:
                    raise ConfigFileError("Unbalanced quotes in configuration line")
                c = line[i]
                if c == "\\" and i + 3 < n and line[i + 1] == "x" and _is_hex(line[i + 2 : i + 4]):
                    cur.append(chr(int(line[i + 2 : i + 4], 16)))
                    i += 3
                elif c == "\\" and i + 1 < n:
                    cur.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 1
                elif c == '"':
                    if i + 1 < n and not line[i + 1].isspace():
                        raise ConfigFileError("Unbalanced quotes in configuration line")
                    i += 1
                    break
                else:
                    cur.append(c)
            elif quote == "'":
                if i >= n:
                    raise ConfigFileError("Unbalanced quotes in configuration line")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    cur.append("'")
                    i += 1
                elif c == "'":
                    if i + 1 < n and not line[i + 1].isspace():
                        raise ConfigFileError("Unbalanced quotes in configuration line")
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n or line[i] in " \n\r\t\0":
                    break
                c = line[i]
                if c in "\"'":
                    quote = c
                else:
                    cur.append(c)
            i += 1
        args.append("".join(cur))


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def parse_text(text: str, source: str, seen: tuple[str, ...] = ()) -> list[Directive]:
    """The directives of a redis.conf text; `include FILE` lines are read in place."""
    out: list[Directive] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r\n")
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{lineno}" if source != "command line" else source
        try:
            args = split_args(line)
        except ConfigFileError as exc:
            raise ConfigFileError(f"{where}: {exc}\n>>> '{line}'") from None
        if not args:
            continue
        name = args[0].lower()
        # `--config FILE` is this server's older spelling of the config file argument
        if (name == "include" or (name == "config" and source == "command line")) and len(args) == 2:
            out += read_config_file(args[1], seen)
            continue
        out.append(Directive(name, args[1:], where, line))
    return out


def read_config_file(path: str | Path, seen: tuple[str, ...] = ()) -> list[Directive]:
    """The directives of a config file (`-` is standard input), with its includes."""
    key = str(Path(path).resolve()) if str(path) != "-" else "-"
    if key in seen:
        raise ConfigFileError(f"{path}: included from itself")
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"Fatal error, can't open config file '{path}': {exc.strerror}") from None
    return parse_text(text, str(path), (*seen, key))


def command_line(argv: list[str]) -> tuple[str | None, str]:
    """redis-server's argv rules: an optional first argument that is a config file (not starting
    with `--`), then `--name value [value ...]` (every argument up to the next `--name` is a
    value; one argument holding `--name value` is split like a config line; `--save` with no
    value means `save ""`). Returns the config file and the options as config text."""
    conf: str | None = None
    j = 0
    if argv and not argv[0].startswith("--"):
        conf, j = argv[0], 1
    lines: list[str] = []
    # whether the option being built already has an argument: until it has, the next argument
    # is its value even if it starts with `--` (as Redis reads `--requirepass --secret`)
    has_arg = True
    while j < len(argv):
        a = argv[j]
        if a == "-" and j == len(argv) - 1:
            conf = "-"
        elif has_arg and a.startswith("--"):
            lines.append(a[2:] + " ")
            has_arg = len(split_args(a[2:])) > 1
            if not has_arg and a.lower() == "--save" and (j == len(argv) - 1 or argv[j + 1].startswith("--")):
                lines[-1] += '""'
                has_arg = True
        else:
            if not lines:
                raise ConfigFileError(f"Invalid argument '{a}': options are given as --name value")
            lines[-1] += _quote(a) + " "
            has_arg = True
        j += 1
    return conf, "\n".join(lines)


def _quote(arg: str) -> str:
    """An argument as a double-quoted config-line token (Redis's `sdscatrepr`)."""
    out = ['"']
    for c in arg:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def load(argv: list[str]) -> list[Directive]:
    """Every directive of the command line: the config file's first, then the options, which
    thus win (`save` lines add up: the first one replaces the default rules, `save ""` clears)."""
    conf, options = command_line(argv)
    directives = read_config_file(conf) if conf else []
    return directives + parse_text(options, "command line")
