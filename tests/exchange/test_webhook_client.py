"""The webhook sender's HTTP/1.1 client against real loopback servers answering in each framing HTTP allows:
kept-alive connections are reused, bodies are capped, a connection is never reused after an unread body, an idle
connection the server closed is replaced, interim 1xx answers are skipped, and anything that is not HTTP fails."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from app.exchange.webhook_client import Client, ProtocolError, Target

pytestmark = pytest.mark.asyncio


class RawServer:
    """Reads each request (head + Content-Length body) and writes whatever `answer(n)` returns for the n-th request
    of the server (None: close without answering); `close_after` closes the connection after each answer. Counts
    connections and requests."""

    def __init__(self, answer: Callable[[int], bytes | None], close_after: bool = False) -> None:
        self.answer, self.close_after = answer, close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.hung_up = asyncio.Event()  # a connection was closed by this side

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))  # fmt: skip
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answer(len(self.requests))
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.hung_up.set()


@contextlib.asynccontextmanager
async def serving(answer: Callable[[int], bytes | None], **kw: bool) -> AsyncIterator[tuple[RawServer, Target]]:
    srv = RawServer(answer, **kw)
    srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = srv.server.sockets[0].getsockname()[1]
    try:
        yield srv, Target("127.0.0.1", srv.port, False, f"receiver.test:{srv.port}", "receiver.test")
    finally:
        srv.server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_kept_alive_connection_is_reused_and_the_request_is_well_formed():
    async with serving(lambda n: OK) as (srv, target):
        client = Client()
        for i in range(5):
            r = await client.post(target, "/hook?x=1", {"webhook-id": f"evt_{i}"}, b'{"a":1}', cap=4096)
            assert (r.status, r.body) == (200, b"ok")
        await client.close()
    assert srv.connections == 1 and len(srv.requests) == 5
    first = srv.requests[0].decode()
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert f"host: receiver.test:{srv.port}\r\n" in first and "webhook-id: evt_0\r\n" in first
    assert "content-length: 7\r\n" in first and first.endswith('\r\n\r\n{"a":1}')


async def test_chunked_answers_and_interim_responses():
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")  # fmt: skip
    async with serving(lambda n: chunked) as (srv, target):
        client = Client()
        for _ in range(2):
            r = await client.post(target, "/", {}, b"{}", cap=4096)
            assert (r.status, r.body) == (202, b"abcde")
        await client.close()
    assert srv.connections == 1  # read to its end: reusable


async def test_a_body_over_the_cap_is_cut_and_its_connection_not_reused():
    big = b"HTTP/1.1 500 Oops\r\ncontent-length: 10000\r\n\r\n" + b"x" * 10000
    async with serving(lambda n: big) as (srv, target):
        client = Client()
        for _ in range(2):
            r = await client.post(target, "/", {}, b"{}", cap=100)
            assert r.status == 500 and r.body == b"x" * 100
        await client.close()
    assert srv.connections == 2


async def test_connection_close_and_bodies_delimited_by_the_end_of_the_connection():
    until_close = b"HTTP/1.0 200 OK\r\n\r\nthe end"
    async with serving(lambda n: until_close, close_after=True) as (srv, target):
        client = Client()
        for _ in range(2):
            r = await client.post(target, "/", {}, b"{}", cap=4096)
            assert (r.status, r.body) == (200, b"the end")
        await client.close()
    assert srv.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced():
    closing = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with serving(lambda n: closing, close_after=True) as (srv, target):  # closes without saying so
        client = Client()
        assert (await client.post(target, "/", {}, b"{}", cap=10)).status == 204
        await asyncio.wait_for(srv.hung_up.wait(), 5)
        assert (await client.post(target, "/", {}, b"{}", cap=10)).status == 204
        await client.close()
    assert srv.connections == 2 and len(srv.requests) == 2


async def test_a_kept_alive_connection_closed_before_answering_is_retried_once_on_a_new_one():
    """The server takes the second request on the reused connection and hangs up without a word (as one closing an
    idle connection at that moment does): the client sends it again on a fresh connection."""
    async with serving(lambda n: None if n == 2 else OK) as (srv, target):
        client = Client()
        assert (await client.post(target, "/", {"webhook-id": "evt_1"}, b"{}", cap=10)).status == 200
        assert (await client.post(target, "/", {"webhook-id": "evt_2"}, b"{}", cap=10)).status == 200
        await client.close()
    assert srv.connections == 2 and [b"evt_2" in r for r in srv.requests] == [False, True, True]


async def test_an_answer_that_is_not_http_is_an_error():
    async with serving(lambda n: b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as (_, target):
        client = Client()
        with pytest.raises(ProtocolError):
            await client.post(target, "/", {}, b"{}", cap=10)
        await client.close()


async def test_a_refused_connection_raises_oserror():
    async with serving(lambda n: OK) as (srv, _):
        port = srv.port
    client = Client()
    with pytest.raises(OSError):
        await client.post(Target("127.0.0.1", port, False, "x", "x"), "/", {}, b"{}", cap=10)
