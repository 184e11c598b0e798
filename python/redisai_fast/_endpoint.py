"""What `Server` and `Database` share: server options given as Python keywords, free ports, and
the address a client connects to (`port`, `unixsocket`, `url`, `client()`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

OptionValue = str | int | float | bool | os.PathLike[str] | Sequence[str | int | float]
"""A server directive's value: `yes`/`no` for booleans, lists joined by spaces (`save=[900, 1]`)."""


def option_text(value: OptionValue) -> str:
    """The text of a directive's value, as the command line and config files spell it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Sequence):
        return " ".join(option_text(v) for v in value)
    raise TypeError(f"option values are str, int, float, bool, paths or lists of them, not {type(value).__name__}")


def directives(options: Mapping[str, OptionValue]) -> list[tuple[str, str]]:
    """(name, value) pairs: `_` in a keyword becomes `-` (`appendonly="yes"`,
    `threads_per_queue=2` is `threads-per-queue 2`, which the server reads as THREADS_PER_QUEUE);
    `dir` and `unixsocket` become absolute paths."""
    pairs = []
    for name, value in options.items():
        text = option_text(value)
        if name in ("dir", "unixsocket") and text:
            text = os.path.abspath(text)
        pairs.append((name.replace("_", "-"), text))
    return pairs


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (bound to port 0, read and released: the caller
    retries if another process takes it before the server binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def connect_host(bind: str | None) -> str:
    """The address to reach a server bound to `bind` (its first address; a wildcard means loopback)."""
    first = (bind or "127.0.0.1").split()[0].lstrip("-")
    return {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1", "::*": "::1"}.get(first, first)


class Endpoint:
    """Where clients reach a server: `port` (TCP on `host`) and/or `unixsocket`."""

    host: str = "127.0.0.1"
    port: int | None = None
    unixsocket: str | None = None
    _password: str | None = None

    @property
    def url(self) -> str:
        """`redis://[:password@]host:port`, or `unix://path` for a server without a TCP port."""
        auth = f":{self._password}@" if self._password else ""
        if self.port:
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"redis://{auth}{host}:{self.port}"
        if self.unixsocket:
            return f"unix://{auth}{self.unixsocket}"
        raise ValueError("this server does not listen: give port= or unixsocket=")

    def client(self, **kwargs: Any) -> redis.Redis:
        """A `redis.Redis` connected to the server (the password set, if the server has one);
        `kwargs` go to `redis.Redis`."""
        import redis

        if self.port:
            kwargs.setdefault("host", self.host)
            kwargs.setdefault("port", self.port)
        elif self.unixsocket:
            kwargs.setdefault("unix_socket_path", self.unixsocket)
        else:
            raise ValueError("this server does not listen: give port= or unixsocket=")
        if self._password:
            kwargs.setdefault("password", self._password)
        return redis.Redis(**kwargs)
