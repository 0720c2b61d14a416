"""The `cooperation.match` webhook event: a new open opportunity that fits an open request well is announced
once per pair, signed and delivered like every change-log event."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import db
from app.exchange.webhooks import drain
from app.services import matchmaking
from tests.auth import bearer, token_for
from tests.exchange.conftest import subscribe
from tests.exchange.receiver import Receiver
from tests.factories import create_request

pytestmark = pytest.mark.asyncio

FITS = {"title": {"en": "Mangrove restoration fellowships for island states"},
        "description": {"en": "Training in mangrove replanting and monitoring."}, "gbf_targets": ["GBF-TARGET-02"],
        "subjects": ["CBD-SUBJECT-MARINE"], "assistance_types": ["technical", "capacity-building"],
        "eligible_regions": ["SIDS"]}  # fmt: skip


async def test_a_fitting_opportunity_is_announced_once_and_delivered(client, worker):
    async with db.transaction() as s:
        fits = await create_request(s, party="FJ", title={"en": "Mangrove restoration on degraded coasts"},
                                    problem={"en": "We need mangrove replanting and monitoring methods."},
                                    gbf_targets=["GBF-TARGET-02"], subjects=["CBD-SUBJECT-MARINE"],
                                    assistance_types=["technical", "capacity-building"])  # fmt: skip
        await create_request(s, party="KE", title={"en": "Mangrove restoration in Kenya"},
                             gbf_targets=["GBF-TARGET-02"])  # not eligible (not a SIDS)  # fmt: skip
        await create_request(s, party="WS", status="closed", title={"en": "Mangrove restoration (closed)"},
                             gbf_targets=["GBF-TARGET-02"], subjects=["CBD-SUBJECT-MARINE"])  # fmt: skip
    hooks = bearer(await token_for("FJ", "webhooks:write"))
    receiver = await Receiver(secrets=[]).start()
    try:
        sub = await subscribe(client, hooks, receiver.url, event_types=["cooperation.*"])
        receiver.secrets.append(sub["secret"])
        de = bearer(await token_for("DE", "cooperation:write"))
        r = await client.post("/api/v1/opportunities", json=FITS, headers=de)
        assert r.status_code == 201, r.text
        opp = r.json()
        # Editing it re-ranks, but a pair is announced once.
        assert (await client.patch(r.headers["location"], json={"url": "https://example.org/apply"},
                                   headers=de)).status_code == 200  # fmt: skip
        (event,) = await receiver.wait_events(1)
        await drain(worker)
    finally:
        await receiver.stop()
    assert len(receiver.requests) == 1 and receiver.requests[0].verified
    assert event["type"] == "cooperation.match"
    data = event["data"]
    assert data["kind"] == "cooperation-match" and data["party"] == "FJ"
    assert data["request_id"] == str(fits["id"]) and data["opportunity_id"] == opp["id"]
    assert data["score"] >= matchmaking.MATCH_EVENT_THRESHOLD
    assert data["url"].endswith(f"/api/v1/cooperation-requests/{fits['id']}/matches")
    async with db.read_connection() as conn:
        rows = (await conn.execute(text("SELECT request_id, score FROM cooperation_matches"))).all()
    assert [str(r.request_id) for r in rows] == [str(fits["id"])]


async def test_weak_or_closed_opportunities_announce_nothing(client):
    async with db.transaction() as s:
        await create_request(s, party="FJ", title={"en": "Invasive rats on islets"}, gbf_targets=["GBF-TARGET-06"])
    de = bearer(await token_for("DE", "cooperation:write"))
    assert (await client.post("/api/v1/opportunities", json=FITS, headers=de)).status_code == 201  # no fit
    closed = {**FITS, "status": "closed", "gbf_targets": ["GBF-TARGET-06"], "title": {"en": "Invasive rats on islets"}}
    assert (await client.post("/api/v1/opportunities", json=closed, headers=de)).status_code == 201
    async with db.read_connection() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM cooperation_matches"))).scalar() == 0
        assert (await conn.execute(text("SELECT count(*) FROM changes WHERE kind = 'cooperation-match'"))).scalar() == 0
