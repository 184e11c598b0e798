"""The exceptions of the Python API: one class per error reply code, named as in redis-py.

An error reply becomes the exception its code selects (`error_from_reply`), with redis-py's
message rules: for the codes redis-py knows (`ERR`, `OOM`, `WRONGPASS`, ...) the message is the
reply without its code, otherwise the whole reply (`WRONGTYPE Operation against ...`, RedisAI's
lines without a code). `exc.code` is the code (`""` when the reply has none). When redis-py is
installed, every class also derives from the redis-py class of the same name (`ResponseError`
from `redis.exceptions.ResponseError`, and so on), so code written against redis-py catches them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # what the type checker sees; at run time these are redis-py's classes when it is installed
    class _RedisError(Exception): ...

    class _RedisResponseError(_RedisError): ...

    class _RedisConnectionError(_RedisError): ...

    class _RedisAuthenticationError(_RedisConnectionError): ...

    class _RedisBusyLoadingError(_RedisConnectionError): ...

    class _RedisOutOfMemoryError(_RedisResponseError): ...

    class _RedisExecAbortError(_RedisResponseError): ...

    class _RedisNoScriptError(_RedisResponseError): ...

    class _RedisReadOnlyError(_RedisResponseError): ...

    class _RedisNoPermissionError(_RedisResponseError): ...

else:
    try:
        from redis.exceptions import AuthenticationError as _RedisAuthenticationError
        from redis.exceptions import BusyLoadingError as _RedisBusyLoadingError
        from redis.exceptions import ConnectionError as _RedisConnectionError
        from redis.exceptions import ExecAbortError as _RedisExecAbortError
        from redis.exceptions import NoPermissionError as _RedisNoPermissionError
        from redis.exceptions import NoScriptError as _RedisNoScriptError
        from redis.exceptions import OutOfMemoryError as _RedisOutOfMemoryError
        from redis.exceptions import ReadOnlyError as _RedisReadOnlyError
        from redis.exceptions import RedisError as _RedisError
        from redis.exceptions import ResponseError as _RedisResponseError
    except ImportError:  # redis-py is optional: stand-ins with the same shape

        class _RedisError(Exception):
            pass

        class _RedisResponseError(_RedisError):
            pass

        class _RedisConnectionError(_RedisError):
            pass

        class _RedisAuthenticationError(_RedisConnectionError):
            pass

        class _RedisBusyLoadingError(_RedisConnectionError):
            pass

        class _RedisOutOfMemoryError(_RedisResponseError):
            pass

        class _RedisExecAbortError(_RedisResponseError):
            pass

        class _RedisNoScriptError(_RedisResponseError):
            pass

        class _RedisReadOnlyError(_RedisResponseError):
            pass

        class _RedisNoPermissionError(_RedisResponseError):
            pass


__all__ = [
    "AuthenticationError",
    "BusyLoadingError",
    "ConnectionError",
    "ExecAbortError",
    "NoPermissionError",
    "NoScriptError",
    "OutOfMemoryError",
    "ReadOnlyError",
    "RedisAIFastError",
    "ResponseError",
    "ServerStartError",
    "WrongTypeError",
    "error_from_reply",
]


class RedisAIFastError(_RedisError):
    """Base of every exception this package raises for a server's answer or state."""

    code: str = ""


class ResponseError(RedisAIFastError, _RedisResponseError):
    """An error reply (`ERR ...`, or a RedisAI message without a code)."""


class WrongTypeError(ResponseError):
    """`WRONGTYPE`: the key holds another kind of value."""


class OutOfMemoryError(ResponseError, _RedisOutOfMemoryError):
    """`OOM`: a write refused above `maxmemory`."""


class ExecAbortError(ResponseError, _RedisExecAbortError):
    """`EXECABORT`: a transaction discarded because a queued command was refused."""


class NoScriptError(ResponseError, _RedisNoScriptError):
    """`NOSCRIPT`."""


class ReadOnlyError(ResponseError, _RedisReadOnlyError):
    """`READONLY`: a write sent to a read-only server."""


class NoPermissionError(ResponseError, _RedisNoPermissionError):
    """`NOPERM`: the user may not run the command or touch the key."""


class ConnectionError(RedisAIFastError, _RedisConnectionError):
    """The database is closed, or no more clients are allowed (`maxclients`)."""


class AuthenticationError(ConnectionError, _RedisAuthenticationError):
    """`WRONGPASS`, `NOAUTH`: authentication failed or is required."""


class BusyLoadingError(ConnectionError, _RedisBusyLoadingError):
    """`LOADING`: the server is still loading its data."""


class ServerStartError(RedisAIFastError):
    """A server that did not start; the message is the server's own (its last output line),
    `output` all it printed and `returncode` its exit status."""

    def __init__(self, message: str, output: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.output = output
        self.returncode = returncode


# reply code -> class; the codes redis-py strips from the message are those in its own table
_BY_CODE: dict[str, type[RedisAIFastError]] = {
    "ERR": ResponseError,
    "OOM": OutOfMemoryError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
    "EXECABORT": ExecAbortError,
    "LOADING": BusyLoadingError,
    "NOSCRIPT": NoScriptError,
    "READONLY": ReadOnlyError,
    "NOPERM": NoPermissionError,
}
_KEEP_CODE: dict[str, type[RedisAIFastError]] = {"WRONGTYPE": WrongTypeError}
# messages under ERR that redis-py turns into other classes
_ERR_MESSAGES: dict[str, type[RedisAIFastError]] = {
    "max number of clients reached": ConnectionError,
    "invalid password": AuthenticationError,
}


def error_from_reply(line: str) -> RedisAIFastError:
    """The exception for the error reply `line` (without its leading `-`)."""
    code = line.split(" ", 1)[0]
    cls = _BY_CODE.get(code)
    if cls is not None:
        message = line[len(code) + 1 :]
        if code == "ERR":
            cls = _ERR_MESSAGES.get(message, cls)
    else:
        message = line
        cls = _KEEP_CODE.get(code, ResponseError)
        if code not in _KEEP_CODE:
            code = code if code.isupper() and len(code) > 1 and code.isalpha() else ""
    exc = cls(message)
    exc.code = code
    return exc
