"""The metrics and health endpoints: `/metrics` (OpenMetrics text rendered by the core),
`/health/live` and `/health/ready`, over a minimal HTTP/1.1 server on `metrics-port`."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("redisai_fast")

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
MAX_REQUEST_BYTES = 8192


@dataclass
class HealthState:
    """What `/health/ready` reports: the data is loaded and the listeners are open."""

    loaded: bool = False
    listening: bool = False
    listeners: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.loaded and self.listening


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _route(core: Any, health: HealthState, method: str, path: str) -> bytes:
    path = path.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", "text/plain", b"method not allowed\n")
    if path == "/metrics":
        return _response("200 OK", OPENMETRICS, core.metrics_text().encode())
    if path == "/health/live":
        return _response("200 OK", "application/json", b'{"status":"live"}\n')
    if path == "/health/ready":
        body = {
            "status": "ready" if health.ready else "not ready",
            "data_loaded": health.loaded,
            "listening": health.listening,
            "listeners": health.listeners,
        }
        status = "200 OK" if health.ready else "503 Service Unavailable"
        return _response(status, "application/json", (json.dumps(body) + "\n").encode())
    return _response("404 Not Found", "text/plain", b"not found\n")


async def serve_http(core: Any, health: HealthState, hosts: list[str], port: int) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            if len(head) > MAX_REQUEST_BYTES:
                return
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            reply = _route(core, health, method, path)
            if method == "HEAD":
                reply = reply.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            writer.write(reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host=hosts, port=port, reuse_address=True, limit=MAX_REQUEST_BYTES)
