"""A real webhook receiver on a loopback port: verifies every delivery with the third-party `standardwebhooks`
package, deduplicates by webhook-id, records the order and how many requests were in flight at once.

A tiny HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies): enough for the worker's httpx
client, and cheap enough to run 100 of them in the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    received_at: float  # time.time()
    verified: bool
    error: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`await r.start()` (or on a socket bound earlier, to simulate an outage); `await r.stop()`."""

    secrets: list[str]
    status: int = 200
    hold: float = 0.0  # seconds each request is held before answering (to widen concurrency windows)
    requests: list[Delivery] = field(default_factory=list)  # every request, in arrival order
    events: list[dict[str, Any]] = field(default_factory=list)  # verified, first delivery of each webhook-id
    seen: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    respond: Callable[[Delivery], int] | None = None
    _server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self, sock: socket.socket | None = None) -> Receiver:
        if sock is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0)
        else:
            sock.listen(128)
            self._server = await asyncio.start_server(self._handle, sock=sock)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def verify(self, headers: dict[str, str], body: bytes) -> str | None:
        """None when any of the receiver's secrets verifies the delivery, else the last error."""
        error = "no secret"
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return None
            except WebhookVerificationError as exc:
                error = str(exc)
        return error

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = await self._receive(headers, body)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _receive(self, headers: dict[str, str], body: bytes) -> int:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)  # simulated processing time, not synchronisation
            error = self.verify(headers, body)
            d = Delivery(headers, body, time.time(), error is None, error)
            self.requests.append(d)
            status = self.respond(d) if self.respond else (self.status if error is None else 400)
            if error is None and 200 <= status < 300 and headers["webhook-id"] not in self.seen:
                self.seen.add(headers["webhook-id"])
                self.events.append(d.payload)
            return status
        finally:
            self.in_flight -= 1
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Receiver], bool], within: float = 20.0) -> None:
        """Wait until `predicate(self)` holds (re-checked on every request)."""
        async with asyncio.timeout(within):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

    async def wait_events(self, n: int, within: float = 20.0) -> list[dict[str, Any]]:
        await self.wait_for(lambda r: len(r.events) >= n, within)
        return self.events


def bound_socket() -> socket.socket:
    """A loopback socket bound to a free port but not listening: connections to it are refused (an outage)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock
