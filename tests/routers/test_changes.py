"""The change feed: strictly increasing seq, visibility, filters, continuation."""

from __future__ import annotations

import pytest

from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio

BODY = {"type": "news", "title": {"en": "Feed item"}}


async def test_feed_order_visibility_and_continuation(client):
    br = bearer(await token_for("BR", "records:write", "records:publish"))
    fr = bearer(await token_for("FR", "records:write", "records:publish"))
    a = (await client.post("/api/v1/records", json=BODY, headers=br)).json()["id"]
    await client.post(f"/api/v1/records/{a}/publish", headers=br)
    b = (await client.post("/api/v1/records", json=BODY, headers=fr)).json()["id"]
    await client.post(f"/api/v1/records/{a}/withdraw", headers=br)

    anon = (await client.get("/api/v1/changes")).json()["items"]
    assert [(c["id"], c["op"]) for c in anon] == [(a, "publish"), (a, "withdraw")]
    own = (await client.get("/api/v1/changes", headers=br)).json()["items"]
    assert [(c["id"], c["op"]) for c in own] == [(a, "create"), (a, "publish"), (a, "withdraw")]
    assert b not in {c["id"] for c in own}
    sec = (await client.get("/api/v1/changes", headers=bearer(await token_for(None, "admin")))).json()["items"]
    seqs = [c["seq"] for c in sec]
    assert len(sec) == 4 and seqs == sorted(seqs) and len(set(seqs)) == 4

    first_resp = await client.get("/api/v1/changes?limit=1&kind=record")
    first = first_resp.json()
    assert (
        first_resp.headers["link"]
        == f'<http://test/api/v1/changes?limit=1&kind=record&since={first["next_since"]}>; rel="next"'
    )
    rest_resp = await client.get(f"/api/v1/changes?since={first['next_since']}")
    rest = rest_resp.json()
    assert "link" not in rest_resp.headers  # caught up: a short page has no next link
    assert [c["op"] for c in first["items"] + rest["items"]] == ["publish", "withdraw"]
    assert (await client.get(f"/api/v1/changes?since={rest['next_since']}")).json()["items"] == []
    assert (await client.get("/api/v1/changes?party=FR")).json()["items"] == []
    assert len((await client.get("/api/v1/changes?kind=record&party=BR")).json()["items"]) == 2


@pytest.mark.parametrize("query", ["since=-1", "since=abc", "kind=poem", "party=ZZ", "limit=0"])
async def test_bad_feed_parameters(client, query):
    r = await client.get(f"/api/v1/changes?{query}")
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json"
