"""redisai-fast: a RedisAI-compatible model server (Redis protocol, tensors, models, scripts)."""

from redisai_fast._core import __version__

__all__ = ["__version__"]
