"""The webhook sender's HTTP/1.1 client: POST one message on a kept-alive connection, read the answer up to a cap.

Why not httpx (used everywhere else): a delivery is one small POST to a known address, and httpx's layers (client,
transport, httpcore pool, anyio stream, h11) cost about 1 ms of CPU per request on the benchmark machine, several
times the rest of a delivery. This client does only what a webhook needs: the connection goes to the address the
caller already checked (SSRF), TLS verifies the host name (SNI), the request is written in one `write`, redirects
are never followed (a 3xx is just a status), and the response body is read up to `cap` bytes (a connection whose
body was not read to its end is closed, never reused). Framing follows RFC 9112: Content-Length, chunked, or
until close; 1xx interim answers are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # bytes of status line + headers accepted
IDLE_PER_TARGET = 2  # kept-alive connections per target (one event is in flight per subscription)


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x as we can read it."""


class RemoteClosed(ConnectionError):
    """The server closed the connection before answering."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect (the checked address) and what to say (Host header, SNI name)."""

    address: str
    port: int
    tls: bool
    host_header: str
    server_hostname: str


@dataclass(slots=True)
class Response:
    status: int
    body: bytes  # at most `cap` bytes


class _Conn(asyncio.Protocol):
    """One connection: bytes in a buffer, a waiter woken when more arrive or the connection ends."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def usable(self) -> bool:
        return not self.eof and not self.buffer and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _more(self) -> None:
        if self.eof:
            raise RemoteClosed("the server closed the connection")
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def read_until(self, sep: bytes, limit: int) -> bytes:
        start = 0
        while True:
            at = self.buffer.find(sep, start)
            if at >= 0:
                out = bytes(self.buffer[: at + len(sep)])
                del self.buffer[: at + len(sep)]
                return out
            if len(self.buffer) > limit:
                raise ProtocolError("response head too large")
            start = max(0, len(self.buffer) - len(sep) + 1)
            await self._more()

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._more()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read_some(self) -> bytes:
        """What is buffered, or the next bytes; b"" at the end of the stream."""
        if not self.buffer:
            if self.eof:
                return b""
            with contextlib.suppress(RemoteClosed):
                await self._more()
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def _head(raw: bytes) -> tuple[int, bool, dict[str, str]]:
    """(status, HTTP/1.1?, headers with lower-case names; repeated names joined by commas)."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError("malformed header line")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(parts[1]), parts[0] == "HTTP/1.1", headers


async def _body(conn: _Conn, status: int, headers: dict[str, str], cap: int) -> tuple[bytes, bool]:
    """The body (up to `cap` bytes) and whether the connection is left at a message boundary (reusable)."""
    if status in (204, 304):
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size_line = await conn.read_until(b"\r\n", MAX_HEAD)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("malformed chunk size") from None
            if size == 0:
                while await conn.read_until(b"\r\n", MAX_HEAD) != b"\r\n":  # trailers
                    pass
                return bytes(out), True
            if len(out) + size > cap:
                out += await conn.read_exactly(max(0, cap - len(out)))
                return bytes(out), False
            out += await conn.read_exactly(size)
            if await conn.read_exactly(2) != b"\r\n":
                raise ProtocolError("malformed chunk")
    if "content-length" in headers:
        try:
            length = int(headers["content-length"].split(",")[0])
        except ValueError:
            raise ProtocolError("malformed content-length") from None
        if length > cap:
            return await conn.read_exactly(cap), False
        return await conn.read_exactly(length), True
    out = bytearray()  # delimited by the end of the connection
    while len(out) < cap:
        chunk = await conn.read_some()
        if not chunk:
            break
        out += chunk
    return bytes(out[:cap]), False


class Client:
    """Kept-alive connections per target, at most `max_targets` targets remembered (least recently used first)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, max_targets: int = 100) -> None:
        self._ssl = ssl_context
        self.max_targets = max_targets
        self._idle: OrderedDict[Target, list[_Conn]] = OrderedDict()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            import httpx  # the same trust store (certifi) as every other outbound call of the project

            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def _connect(self, target: Target) -> _Conn:
        loop = asyncio.get_running_loop()
        if target.tls:
            _, conn = await loop.create_connection(_Conn, target.address, target.port, ssl=self._tls(),
                                                   server_hostname=target.server_hostname)  # fmt: skip
        else:
            _, conn = await loop.create_connection(_Conn, target.address, target.port)
        return conn

    def _take(self, target: Target) -> _Conn | None:
        idle = self._idle.get(target)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    def _give_back(self, target: Target, conn: _Conn) -> None:
        idle = self._idle.setdefault(target, [])
        self._idle.move_to_end(target)
        if len(idle) < IDLE_PER_TARGET and conn.usable:
            idle.append(conn)
        else:
            conn.close()
        while len(self._idle) > self.max_targets:
            _, old = self._idle.popitem(last=False)
            for c in old:
                c.close()

    async def post(self, target: Target, path: str, headers: dict[str, str], body: bytes, *, cap: int) -> Response:
        """POST `body`; a kept-alive connection the server closed before answering is replaced once."""
        head = [f"POST {path} HTTP/1.1", f"host: {target.host_header}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"content-length: {len(body)}")
        message = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        conn = self._take(target)
        if conn is not None:
            try:
                return await self._exchange(target, conn, message, cap)
            except RemoteClosed:
                pass  # it closed the idle connection as we wrote: nothing was answered, send on a new one
        return await self._exchange(target, await self._connect(target), message, cap)

    async def _exchange(self, target: Target, conn: _Conn, message: bytes, cap: int) -> Response:
        reusable = False
        try:
            assert conn.transport is not None
            conn.transport.write(message)
            while True:
                status, http11, headers = _head(await conn.read_until(b"\r\n\r\n", MAX_HEAD))
                if not (100 <= status < 200) or status == 101:
                    break
            body, boundary = await _body(conn, status, headers, cap)
            reusable = boundary and http11 and "close" not in headers.get("connection", "").lower()
            return Response(status, body)
        finally:
            if reusable:
                self._give_back(target, conn)
            else:
                conn.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
