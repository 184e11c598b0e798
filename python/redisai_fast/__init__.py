"""redisai-fast: a RedisAI-compatible model server (Redis protocol, tensors, models, scripts).

`Server` runs one in a child process; `open()` runs its core inside this process and returns a
`Database`; `redisai_fast.errors` holds the exceptions both raise. They are imported on first
use, so the server's own start (`redisai-fast`) does not pay for numpy and redis-py.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from redisai_fast._core import __version__

if TYPE_CHECKING:
    from redisai_fast.database import Dag, Database, open
    from redisai_fast.errors import ConnectionError, ResponseError, ServerStartError
    from redisai_fast.process import Server

# a library's logs go nowhere unless the application configures logging (the CLI does)
logging.getLogger("redisai_fast").addHandler(logging.NullHandler())

_LAZY = {
    "Dag": "redisai_fast.database",
    "Database": "redisai_fast.database",
    "open": "redisai_fast.database",
    "ConnectionError": "redisai_fast.errors",
    "ResponseError": "redisai_fast.errors",
    "ServerStartError": "redisai_fast.errors",
    "Server": "redisai_fast.process",
}

__all__ = ["ConnectionError", "Dag", "Database", "ResponseError", "Server", "ServerStartError", "__version__", "open"]


_SUBMODULES = ("database", "errors", "process", "pytest_plugin")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"redisai_fast.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'redisai_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
