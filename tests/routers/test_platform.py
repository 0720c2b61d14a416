"""Cross-cutting behaviour: health, readiness, metrics, rate limits, OpenAPI, request ids."""

from __future__ import annotations

import httpx
import pytest

from app.settings import get_settings

pytestmark = pytest.mark.asyncio


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "webhook_delivery": "ok"}


async def test_readyz_reports_migrations_behind(client, engine):
    from sqlalchemy import text

    from app import db

    async with db.get_engine().begin() as conn:
        (current,) = (await conn.execute(text("SELECT version_num FROM alembic_version"))).one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["migrations"].startswith("at ['0001']")
    finally:
        async with db.get_engine().begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})


async def test_metrics_count_requests_by_route(client):
    await client.get("/api/v1/parties?limit=1")
    body = (await client.get("/metrics")).text
    assert 'chm_http_requests_total{method="GET",route="/api/v1/parties",status="200"}' in body


async def test_request_id_is_echoed_or_minted(client):
    r = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32


async def test_rate_limit_answers_429_with_retry_after(engine, monkeypatch):
    monkeypatch.setenv("CHM_RATE_LIMIT_PER_MINUTE", "60")
    get_settings.cache_clear()
    try:
        from app.main import create_app

        app = create_app()
    finally:
        monkeypatch.delenv("CHM_RATE_LIMIT_PER_MINUTE")
        get_settings.cache_clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        codes = [(await c.get("/api/v1/parties?limit=1")).status_code for _ in range(12)]
        assert codes[:10] == [200] * 10 and codes[-1] == 429
        r = await c.get("/api/v1/parties?limit=1")
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        # another caller (a token) has its own bucket; health probes are never limited
        assert (await c.get("/healthz")).status_code == 200


async def test_openapi_merges_overrides_and_lists_every_endpoint(client):
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {t["name"] for t in schema["tags"]} >= {"records", "reference", "tokens"}
    assert schema["servers"][0]["url"].startswith("http")
    for path in (
        "/api/v1/records",
        "/api/v1/records/{record_id}",
        "/api/v1/records/bulk",
        "/api/v1/parties",
        "/api/v1/vocabularies/{name}",
        "/api/v1/tokens",
    ):
        assert path in schema["paths"], path
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_parties_are_the_196_parties_each_once(client):
    seen, url = [], "/api/v1/parties?limit=50"
    while url:
        body = (await client.get(url)).json()
        seen += [p["code"] for p in body["items"]]
        url = f"/api/v1/parties?limit=50&cursor={body['next_cursor']}" if body["next_cursor"] else ""
    assert len(seen) == 196 == len(set(seen))
    assert "EU" in seen and "US" not in seen and "BR" in seen
    br = (await client.get("/api/v1/parties/br")).json()
    assert br["name"]["en"] == "Brazil" and set(br["name"]) == {"ar", "en", "es", "fr", "ru", "zh"}


async def test_vocabularies(client):
    names = (await client.get("/api/v1/vocabularies")).json()["items"]
    assert {"gbf-targets", "aichi-targets", "cbd-subjects", "record-types", "assistance-types"} <= set(names)
    gbf = (await client.get("/api/v1/vocabularies/gbf-targets")).json()["terms"]
    assert [t["code"] for t in gbf] == [f"GBF-GOAL-{g}" for g in "ABCD"] + [f"GBF-TARGET-{n:02d}" for n in range(1, 24)]
    assert all(t["broader"][0].startswith("GBF-GOAL-") for t in gbf[4:]) and gbf[0]["narrower"][:1] == ["GBF-TARGET-01"]
    assert all(t["title"]["en"] for t in gbf)
    aichi = (await client.get("/api/v1/vocabularies/aichi-targets")).json()["terms"]
    assert len(aichi) == 20
    assert (await client.get("/api/v1/vocabularies/nope")).status_code == 404
