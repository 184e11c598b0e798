"""The network side of redisai-fast: the uvloop event loop that hosts the Rust core."""
