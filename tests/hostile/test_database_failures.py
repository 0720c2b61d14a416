"""Database failures answer as the client's problem, not a 500: timeouts and outages are 503 + Retry-After,
a value only the database refuses is a 4xx; an unexpected error is a 500 that keeps the connection and is
counted under its real status."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import db, metrics
from app.services import records as records_service

pytestmark = pytest.mark.asyncio


async def test_statement_timeout_is_set_on_every_connection(engine) -> None:  # type: ignore[no-untyped-def]
    async with db.read_connection() as conn:
        assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() not in ("0", "0ms")


async def test_statement_timeout_is_a_503_with_retry_after(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def slow(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        await conn.execute(text("SET statement_timeout = '50ms'"))
        try:
            await conn.execute(text("SELECT pg_sleep(2)"))
        finally:
            await conn.execute(text("RESET statement_timeout"))

    monkeypatch.setattr(records_service, "list_records", slow)
    r = await client.get("/api/v1/records")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    assert "statement timeout" in r.json()["detail"]
    assert (await client.get("/api/v1/parties?limit=1")).status_code == 200


async def test_database_unreachable_is_a_503(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(records_service, "list_records", down)
    r = await client.get("/api/v1/records")
    assert r.status_code == 503 and r.headers["retry-after"] and r.json()["dependency"] == "database"


async def test_graphql_maps_database_failures_too(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(records_service, "list_records", down)
    body = (await client.post("/graphql", json={"query": "{ records { nodes { id } } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"


async def test_unexpected_error_is_a_counted_500_not_a_dropped_connection(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    before = metrics.REQUESTS.labels("GET", "/api/v1/records", "500")._value.get()
    monkeypatch.setattr(records_service, "list_records", broken)
    r = await client.get("/api/v1/records")  # ASGITransport would raise if the exception escaped the app
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert "a bug" not in r.text
    assert metrics.REQUESTS.labels("GET", "/api/v1/records", "500")._value.get() == before + 1
