"""Reads redis.conf-style config files into (name, value) pairs; the core validates them."""

from __future__ import annotations

import shlex
from pathlib import Path


class ConfigFileError(ValueError):
    """A config file line that cannot be read."""


def read_config_file(path: str | Path) -> list[tuple[str, str]]:
    """Returns the file's directives in order: `name value...` per line, `#` comments.

    Values with several words (`save 900 1 300 10`) are joined with single spaces; quotes work as
    in redis.conf (`requirepass "a b"`).
    """
    pairs: list[tuple[str, str]] = []
    text = Path(path).read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=False, posix=True)
        except ValueError as exc:
            raise ConfigFileError(f"{path}:{lineno}: {exc}") from exc
        if len(words) < 2 and words[0].lower() not in ("save",):
            raise ConfigFileError(f"{path}:{lineno}: '{words[0]}' needs a value")
        pairs.append((words[0].lower(), " ".join(words[1:])))
    return pairs
