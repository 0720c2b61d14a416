"""Rate limits that hold: one bucket per verified token however the header is spelled, forwarded addresses
only from trusted proxies, probes limited, headers on every response, one limit across processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from app.middleware import RateLimitMiddleware
from app.ratelimit import parse_networks
from tests.auth import token_for


def limited_app(per_minute: int = 60, burst: int = 5, trusted: str = "") -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RateLimitMiddleware, per_minute=per_minute, burst=burst,
                       trusted_proxies=parse_networks(trusted))  # fmt: skip
    return app


async def codes(c: httpx.AsyncClient, n: int, url: str = "/ping", **kw: object) -> list[int]:
    return [(await c.get(url, **kw)).status_code for _ in range(n)]  # type: ignore[arg-type]


async def test_one_bucket_per_token_however_the_header_is_spelled(engine) -> None:  # type: ignore[no-untyped-def]
    token = await token_for("BR", "records:write")
    transport = httpx.ASGITransport(app=limited_app(), client=("10.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        spellings = [f"Bearer {token}", f"bearer {token}", f"BEARER  {token}", f"  Bearer {token}  ", f"bEaReR {token}"]
        got = [(await c.get("/ping", headers={"Authorization": h})).status_code for h in spellings]
        assert got == [200] * 5
        assert (await c.get("/ping", headers={"Authorization": f"Bearer   {token}"})).status_code == 429
        # forged tokens are not a bucket of their own: they count against the client address
        forged = [(await c.get("/ping", headers={"Authorization": f"Bearer x.y.{i}"})).status_code for i in range(6)]
        assert forged == [200] * 5 + [429]


async def test_forwarded_for_is_believed_only_from_trusted_proxies(engine) -> None:  # type: ignore[no-untyped-def]
    untrusted = httpx.ASGITransport(app=limited_app(), client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=untrusted, base_url="http://t") as c:
        got = [(await c.get("/ping", headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code for i in range(6)]
        assert got[-1] == 429  # spoofed addresses from an untrusted peer share the peer's bucket
    trusted = httpx.ASGITransport(app=limited_app(trusted="10.1.0.0/16"), client=("10.1.2.3", 1))
    async with httpx.AsyncClient(transport=trusted, base_url="http://t") as c:
        got = [(await c.get("/ping", headers={"X-Forwarded-For": f"198.51.100.{i}, 10.1.9.9"})).status_code
               for i in range(6)]  # fmt: skip
        assert got == [200] * 6  # six real clients behind the proxy
        assert await codes(c, 6, headers={"X-Forwarded-For": "203.0.113.7"}) == [200] * 5 + [429]


async def test_probes_are_limited_and_headers_are_on_every_response(engine) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=limited_app(), client=("10.0.0.9", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/ping")
        assert r.headers["ratelimit-policy"] == '"default";q=5;w=5'
        assert r.headers["ratelimit"].startswith('"default";r=4;')
        assert await codes(c, 5, "/readyz") == [200] * 4 + [429]
        refused = await c.get("/readyz")
        assert refused.headers["ratelimit"].startswith('"default";r=0;') and int(refused.headers["retry-after"]) >= 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_servers(database_url: str) -> Iterator[list[str]]:
    env = {**os.environ, "CHM_RATE_LIMIT_PER_MINUTE": "60", "CHM_RATE_LIMIT_BURST": "10", "CHM_ENV": "test"}
    ports = [_free_port(), _free_port()]
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--log-level", "warning", "--port"]
    procs = [subprocess.Popen([*cmd, str(p)], env=env) for p in ports]  # noqa: S603 - our own interpreter
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)  # polling a port that is not open yet; the condition is the answer
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.mark.slow
def test_two_processes_share_one_limit(two_servers: list[str]) -> None:
    got = []
    with httpx.Client(timeout=10) as c:
        for i in range(11):
            got.append(c.get(f"{two_servers[i % 2]}/api/v1/parties?limit=1").status_code)
        assert got == [200] * 10 + [429], got
        assert c.get(f"{two_servers[0]}/api/v1/parties?limit=1").status_code == 429
        assert c.get(f"{two_servers[1]}/api/v1/parties?limit=1").status_code == 429


async def test_one_claim_in_flight_per_caller(engine) -> None:  # type: ignore[no-untyped-def]
    from app.ratelimit import SharedQuota

    quota = SharedQuota(per_minute=6000, burst=200)  # leases of 10
    first = await asyncio.gather(*(quota.take("a:192.0.2.1") for _ in range(30)))
    assert all(d.allowed for d in first)
    # 30 concurrent requests with no lease: one claims at a time and the others spend what it brought back
    # (three claims of 10), instead of 30 claims each queueing for a database connection
    assert quota.claims == 3
    denied = SharedQuota(per_minute=60, burst=1)
    got = await asyncio.gather(*(denied.take("a:192.0.2.2") for _ in range(5)))
    assert [d.allowed for d in got].count(True) == 1
    assert denied.claims <= 2  # the waiters share the claim that found the bucket empty
