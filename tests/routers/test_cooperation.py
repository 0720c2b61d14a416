"""REST /api/v1/cooperation-requests and offers: reads, and writes by requesters and providers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app import db
from app.models import AuditEvent, Change, CooperationOffer, CooperationRequest, OutboxEntry
from tests.auth import bearer, token_for
from tests.factories import create_request

pytestmark = pytest.mark.asyncio
CR = CooperationRequest.__table__  # type: ignore[attr-defined]
CO = CooperationOffer.__table__  # type: ignore[attr-defined]


async def make(n: int, **overrides: object) -> list[dict]:
    async with db.transaction() as s:
        return [await create_request(s, **overrides) for _ in range(n)]


async def pages(client, url: str) -> list[dict]:
    """Follow Link headers to the end; every page is a 200 and the last has no next link."""
    seen: list[dict] = []
    while url:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["items"])
        if body["next_cursor"]:
            url = r.headers["link"].split(">")[0].lstrip("<").replace("http://test", "")
        else:
            assert "link" not in r.headers
            url = ""
    return seen


def ids(items: list[dict]) -> list[str]:
    return [str(i["id"]) for i in items]


async def test_paging_returns_every_request_once_both_ways(client):
    made = await make(8) + await make(3, updated_at=datetime(2025, 6, 1, tzinfo=UTC))
    newest = sorted(made, key=lambda r: (r["updated_at"], r["id"]), reverse=True)
    seen = await pages(client, "/api/v1/cooperation-requests?limit=3")
    assert ids(seen) == ids(newest)
    assert all(i["offers"] is None for i in seen)
    assert ids(await pages(client, "/api/v1/cooperation-requests?limit=4&sort=updated_at")) == ids(newest[::-1])


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("party=FR", {"fr"}),
        ("party=fr", {"fr"}),
        ("status=closed", {"closed"}),
        ("subject=CBD-SUBJECT-MARINE", {"marine"}),
        ("gbf_target=GBF-TARGET-02", {"t2"}),
        ("updated_since=2030-06-01T12:00:00%2B02:00", {"late"}),
        ("party=BR&status=open&gbf_target=GBF-TARGET-02", {"t2"}),
        ("party=FR&status=closed", set()),
    ],
)
async def test_filters(client, query, expect):
    async with db.transaction() as s:
        tags = {
            "fr": await create_request(s, party="FR"),
            "closed": await create_request(s, status="closed"),
            "marine": await create_request(s, subjects=["CBD-SUBJECT-MARINE"]),
            "t2": await create_request(s, gbf_targets=["GBF-TARGET-02"]),
            "late": await create_request(s, updated_at=datetime(2031, 1, 1, tzinfo=UTC)),
        }
    r = await client.get(f"/api/v1/cooperation-requests?{query}")
    assert r.status_code == 200, r.text
    assert set(ids(r.json()["items"])) == {str(tags[t]["id"]) for t in expect}


async def test_single_with_offers_offers_paged_and_304(client):
    (req,) = await make(1, offers=[{"provider_party": p} for p in ("FR", "DE", "JP", "KE", "MX")])
    url = f"/api/v1/cooperation-requests/{req['id']}"
    r = await client.get(url)
    assert r.status_code == 200
    assert [o["provider_party"] for o in r.json()["offers"]] == ["FR", "DE", "JP", "KE", "MX"]
    again = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    offers = await pages(client, f"{url}/offers?limit=2")
    assert ids(offers) == ids(r.json()["offers"])
    one = await client.get(f"{url}/offers/{offers[2]['id']}")
    assert one.status_code == 200 and one.json() == offers[2] and one.headers["etag"]
    assert (await client.get(f"/api/v1/cooperation-requests/{uuid.uuid4()}/offers")).status_code == 404
    assert (await client.get(f"{url}/offers/{uuid.uuid4()}")).status_code == 404
    (other,) = await make(1)
    assert (await client.get(f"/api/v1/cooperation-requests/{other['id']}/offers/{offers[0]['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("url", "status", "loc"),
    [
        ("/api/v1/cooperation-requests?cursor=garbage!!", 400, ["query", "cursor"]),
        ("/api/v1/cooperation-requests?limit=0", 422, ["query", "limit"]),
        ("/api/v1/cooperation-requests?limit=100000", 422, ["query", "limit"]),
        ("/api/v1/cooperation-requests?party=XX", 400, ["query", "party"]),
        ("/api/v1/cooperation-requests?status=pending", 400, ["query", "status"]),
        ("/api/v1/cooperation-requests?subject=CBD-SUBJECT-NOPE", 400, ["query", "subject"]),
        ("/api/v1/cooperation-requests?gbf_target=AICHI-TARGET-01", 400, ["query", "gbf_target"]),
        ("/api/v1/cooperation-requests?updated_since=soon", 400, ["query", "updated_since"]),
        ("/api/v1/cooperation-requests?sort=-created_at", 400, ["query", "sort"]),
        ("/api/v1/cooperation-requests/123", 422, ["path", "request_id"]),
        (f"/api/v1/cooperation-requests/{uuid.uuid4()}/offers?cursor=WyJ4Il0", 400, ["query", "cursor"]),
        (f"/api/v1/cooperation-requests/{uuid.uuid4()}/offers?limit=201", 422, ["query", "limit"]),
        (f"/api/v1/cooperation-requests/{uuid.uuid4()}/offers/nope", 422, ["path", "offer_id"]),
    ],
)
async def test_bad_input_is_a_clear_problem(client, url, status, loc):
    r = await client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(e["loc"] == loc for e in r.json()["errors"]), r.json()


# --- writes --------------------------------------------------------------------------------------------------

NEW = {
    "title": {"en": "Mangrove restoration monitoring"}, "problem": {"en": "No baseline data"},
    "assistance_types": ["technical", "capacity-building"], "subjects": ["CBD-SUBJECT-MARINE"],
    "gbf_targets": ["GBF-TARGET-02"], "countries": ["BR", "AR"], "start_date": "2026-01-01",
    "end_date": "2026-12-31", "contact": {"name": "Ana", "email": "ana@example.br"},
}  # fmt: skip
OFFER = {"description": {"en": "Our institute can train field teams."}, "provider_organization": "INRAE"}


async def counts() -> dict[str, dict[str, int]]:
    """Rows per kind in audit_events, changes and search_outbox (minting test tokens is not counted)."""
    out: dict[str, dict[str, int]] = {}
    async with db.read_connection() as conn:
        for name, model in (("audit", AuditEvent), ("changes", Change), ("outbox", OutboxEntry)):
            t = model.__table__  # type: ignore[union-attr]
            rows = await conn.execute(select(t.c.kind, func.count()).where(t.c.kind != "token").group_by(t.c.kind))
            out[name] = dict(rows.all())
    return out


async def snapshot() -> tuple[Any, Any]:
    async with db.read_connection() as conn:
        return ((await conn.execute(select(CR).order_by(CR.c.id))).all(),
                (await conn.execute(select(CO).order_by(CO.c.id))).all())  # fmt: skip


async def test_request_life_cycle(client):
    br = bearer(await token_for("BR", "cooperation:write"))
    r = await client.post("/api/v1/cooperation-requests", json=NEW, headers=br)
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["party"] == "BR" and req["status"] == "open" and req["offers"] == []
    url = r.headers["location"]
    got = await client.get(url)
    assert got.json() == req and got.headers["etag"] == r.headers["etag"]
    patched = await client.patch(url, json={"status": "closed", "problem": None},
                                 headers={**br, "If-Match": r.headers["etag"]})  # fmt: skip
    assert patched.status_code == 200 and patched.json()["status"] == "closed" and patched.json()["problem"] is None
    stale = await client.put(url, json=NEW, headers={**br, "If-Match": r.headers["etag"]})
    assert stale.status_code == 412
    assert (await client.get(url)).json() == patched.json()
    put = await client.put(url, json={**NEW, "party": "BR"}, headers={**br, "If-Match": patched.headers["etag"]})
    assert put.status_code == 200 and put.json()["status"] == "open" and put.json()["problem"] == NEW["problem"]
    assert (await client.delete(url, headers=br)).status_code == 204
    assert (await client.get(url)).status_code == 404
    kinds = {"cooperation-request": 4}
    assert await counts() == {"audit": kinds, "changes": kinds, "outbox": kinds}


@pytest.mark.parametrize(
    ("change", "status", "loc"),
    [
        ({"party": "FR"}, 403, None),
        ({"id": str(uuid.uuid4())}, 422, ["body", "id"]),
        ({"updated_at": "2020-01-01T00:00:00Z"}, 422, ["body", "updated_at"]),
        ({"offers": []}, 422, ["body", "offers"]),
        ({"subjects": ["CBD-SUBJECT-NOPE"]}, 422, ["body", "subjects"]),
        ({"gbf_targets": ["GBF-TARGET-30"]}, 422, ["body", "gbf_targets"]),
        ({"assistance_types": ["moral-support"]}, 422, ["body", "assistance_types"]),
        ({"countries": ["ZZ"]}, 422, ["body", "countries"]),
        ({"end_date": "2025-01-01"}, 422, ["body"]),
        ({"status": "matched-ish"}, 422, ["body", "status"]),
    ],
)
async def test_create_refuses_bad_and_foreign_bodies(client, change, status, loc):
    br = bearer(await token_for("BR", "cooperation:write"))
    r = await client.post("/api/v1/cooperation-requests", json={**NEW, **change}, headers=br)
    assert r.status_code == status, r.text
    if loc:
        assert any(e["loc"] == loc for e in r.json()["errors"]), r.json()
    if loc and loc[-1] in ("subjects", "gbf_targets", "assistance_types", "countries"):
        assert change[loc[-1]][0] in r.json()["detail"]  # the unknown code is named
    assert await snapshot() == ([], [])
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


async def test_patch_checks_dates_against_the_stored_ones(client):
    br = bearer(await token_for("BR", "cooperation:write"))
    (req,) = await make(1, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    url = f"/api/v1/cooperation-requests/{req['id']}"
    r = await client.patch(url, json={"end_date": "2025-06-30"}, headers=br)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "end_date"]
    r = await client.patch(url, json={"title": None}, headers=br)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "title"]
    assert (await client.get(url)).json()["end_date"] == "2026-12-31"
    r = await client.patch(url, json={"start_date": None, "end_date": "2025-06-30"}, headers=br)
    assert r.status_code == 200 and (r.json()["start_date"], r.json()["end_date"]) == (None, "2025-06-30")


async def test_other_parties_cannot_touch_a_request(client):
    fr = bearer(await token_for("FR", "cooperation:write"))
    (req,) = await make(1, offers=[{"provider_party": "DE"}])
    before = await snapshot()
    url = f"/api/v1/cooperation-requests/{req['id']}"
    offer_id = before[1][0].id
    attempts = [
        client.patch(url, json={"status": "closed"}, headers=fr),
        client.put(url, json=NEW, headers=fr),
        client.put(url, json={**NEW, "party": "FR"}, headers=fr),
        client.delete(url, headers=fr),
        client.post(f"{url}/offers/{offer_id}/decision", json={"status": "accepted"}, headers=fr),
        client.patch(f"{url}/offers/{offer_id}", json={"description": {"en": "mine now"}}, headers=fr),
        client.delete(f"{url}/offers/{offer_id}", headers=fr),
    ]
    for attempt in attempts:
        r = await attempt
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
    br = bearer(await token_for("BR", "cooperation:write"))
    # The requester cannot edit the provider's offer either, nor hand its request to another Party.
    assert (await client.patch(f"{url}/offers/{offer_id}", json={"description": {"en": "x"}},
                               headers=br)).status_code == 403  # fmt: skip
    assert (await client.put(url, json={**NEW, "party": "FR"}, headers=br)).status_code == 403
    assert await snapshot() == before
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}


async def test_offer_accept_flow_and_events(client):
    br = bearer(await token_for("BR", "cooperation:write"))
    fr = bearer(await token_for("FR", "cooperation:write"))
    de = bearer(await token_for("DE", "cooperation:write"))
    (req,) = await make(1)
    url = f"/api/v1/cooperation-requests/{req['id']}"

    own = await client.post(f"{url}/offers", json=OFFER, headers=br)
    assert own.status_code == 403 and "own" in own.json()["detail"]
    bad = await client.post(f"{url}/offers", json={**OFFER, "provider_party": "JP"}, headers=fr)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "provider_party"]
    first = await client.post(f"{url}/offers", json=OFFER, headers=fr)
    assert first.status_code == 201, first.text
    offer = first.json()
    assert offer["provider_party"] == "FR" and offer["status"] == "proposed"
    assert first.headers["location"] == f"{url}/offers/{offer['id']}"
    assert (await client.get(url)).json()["status"] == "in-discussion"
    r = await client.post(f"{url}/offers", json={"description": {"de": "Hilfe"}}, headers=de)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "description"]  # not a UN language
    r = await client.post(f"{url}/offers", json={"description": {"es": "Ayuda"}}, headers=de)
    assert r.status_code == 201
    second = r.json()

    edited = await client.patch(f"{url}/offers/{offer['id']}", json={"description": {"fr": "Formation"}},
                                headers={**fr, "If-Match": first.headers["etag"]})  # fmt: skip
    assert edited.status_code == 200 and edited.json()["description"] == {"fr": "Formation"}
    stale = await client.patch(f"{url}/offers/{offer['id']}", json={"contact": None},
                               headers={**fr, "If-Match": first.headers["etag"]})  # fmt: skip
    assert stale.status_code == 412
    assert (await client.patch(f"{url}/offers/{offer['id']}", json={"status": "accepted"},
                               headers=fr)).status_code == 422  # fmt: skip

    accepted = await client.post(f"{url}/offers/{offer['id']}/decision", json={"status": "accepted"}, headers=br)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert (await client.get(url)).json()["status"] == "matched"
    again = await client.post(f"{url}/offers/{offer['id']}/decision", json={"status": "declined"}, headers=br)
    assert again.status_code == 409
    assert (await client.delete(f"{url}/offers/{offer['id']}", headers=fr)).status_code == 409
    late = await client.post(f"{url}/offers", json=OFFER, headers=de)
    assert late.status_code == 409  # a matched request takes no new offers
    assert (await client.post(f"{url}/offers/{second['id']}/decision", json={"status": "maybe"},
                              headers=br)).status_code == 422  # fmt: skip
    assert (await client.delete(f"{url}/offers/{second['id']}", headers=de)).status_code == 204

    full = (await client.get(url)).json()
    assert [(o["provider_party"], o["status"]) for o in full["offers"]] == [("FR", "accepted")]
    # 2 offers created, 1 edited, 1 accepted, 1 withdrawn; each also updates the request it belongs to.
    assert await counts() == {
        "audit": {"offer": 5, "cooperation-request": 5},
        "changes": {"offer": 5, "cooperation-request": 5},
        "outbox": {"cooperation-request": 5},
    }
    assert full["updated_at"] > req["updated_at"].isoformat()


async def test_secretariat_may_offer_for_an_organization_and_decide(client):
    sec = bearer(await token_for(None, "cooperation:write"))
    (req,) = await make(1)
    url = f"/api/v1/cooperation-requests/{req['id']}"
    nameless = await client.post(f"{url}/offers", json={"description": {"en": "x"}}, headers=sec)
    assert nameless.status_code == 422 and nameless.json()["errors"][0]["loc"] == ["body", "provider_organization"]
    r = await client.post(f"{url}/offers", json=OFFER, headers=sec)
    assert r.status_code == 201 and r.json()["provider_party"] is None
    declined = await client.post(f"{url}/offers/{r.json()['id']}/decision", json={"status": "declined"}, headers=sec)
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert (await client.get(url)).json()["status"] == "in-discussion"
    created = await client.post("/api/v1/cooperation-requests", json=NEW, headers=sec)
    assert created.status_code == 422 and created.json()["errors"][0]["loc"] == ["body", "party"]
    created = await client.post("/api/v1/cooperation-requests", json={**NEW, "party": "KE"}, headers=sec)
    assert created.status_code == 201 and created.json()["party"] == "KE"


async def test_writes_need_the_scope(client):
    (req,) = await make(1)
    url = f"/api/v1/cooperation-requests/{req['id']}"
    assert (await client.post("/api/v1/cooperation-requests", json=NEW)).status_code == 401
    assert (await client.post(f"{url}/offers", json=OFFER)).status_code == 401
    fr = bearer(await token_for("FR", "nodes:write"))
    assert (await client.post(f"{url}/offers", json=OFFER, headers=fr)).status_code == 403
    br = bearer(await token_for("BR", "records:write"))
    assert (await client.patch(url, json={"status": "closed"}, headers=br)).status_code == 403
    br = bearer(await token_for("BR", "cooperation:write"))
    missing = await client.post(f"{url}/offers/{uuid.uuid4()}/decision", json={"status": "accepted"}, headers=br)
    assert missing.status_code == 404
    assert (await client.get(url)).json()["status"] == "open"
    assert await counts() == {"audit": {}, "changes": {}, "outbox": {}}
