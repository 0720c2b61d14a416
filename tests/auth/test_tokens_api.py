"""REST tokens: minting rules, whoami, listing, revocation, audit trail."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from app import db
from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio
TOKENS = "/api/v1/tokens"
WHOAMI = "/api/v1/auth/whoami"


def body(name: str = "ci", party: str | None = "BR", scopes: list[str] | None = None, days: int = 30) -> dict:
    data = {"name": name, "scopes": scopes if scopes is not None else ["records:write"], "expires_days": days}
    if party is not None:
        data["party"] = party
    return data


async def mint(client, minter: str, **kw) -> dict:
    r = await client.post(TOKENS, json=body(**kw), headers=bearer(minter))
    assert r.status_code == 201, r.text
    return r.json()


async def audit() -> list[dict]:
    async with db.read_connection() as conn:
        rows = await conn.execute(text("SELECT token_id, principal, action, kind, entity_id, party FROM audit_events "
                                       "ORDER BY id"))  # fmt: skip
        return [dict(r._mapping) for r in rows]


async def test_whoami_anonymous(client):
    r = await client.get(WHOAMI)
    assert r.status_code == 200
    assert r.json() == {"kind": "anonymous", "party": None, "scopes": [], "token_id": None, "token_name": None,
                        "expires_at": None}  # fmt: skip


async def test_secretariat_mints_a_party_token_that_works(client):
    sec = await token_for(None)
    created = await mint(client, sec, name="Brazil CMS", scopes=["records:publish", "records:write"], days=90)
    assert (created["party"], created["kind"]) == ("BR", "party") and "principal" not in created
    assert created["scopes"] == ["records:write", "records:publish"]
    assert created["token"].count(".") == 2
    r = await client.get(WHOAMI, headers=bearer(created["token"]))
    assert r.status_code == 200
    me = r.json()
    assert me["kind"] == "party" and me["party"] == "BR"
    assert me["scopes"] == ["records:publish", "records:write"]
    assert me["token_id"] == created["id"] and me["token_name"] == "Brazil CMS"
    assert me["expires_at"] == created["expires_at"]


async def test_secretariat_mints_a_secretariat_token(client):
    sec = await token_for(None)
    created = await mint(client, sec, party=None, scopes=["decisions:write"])
    assert (created["party"], created["kind"]) == (None, "secretariat")
    me = (await client.get(WHOAMI, headers=bearer(created["token"]))).json()
    assert me["kind"] == "secretariat" and me["party"] is None and me["scopes"] == ["decisions:write"]


async def test_party_mints_for_itself_a_subset_of_its_scopes(client):
    br = await token_for("BR", "tokens:write", "records:write", "records:publish")
    created = await mint(client, br, scopes=["records:write"])
    me = (await client.get(WHOAMI, headers=bearer(created["token"]))).json()
    assert (me["party"], me["scopes"]) == ("BR", ["records:write"])


async def test_party_cannot_mint_for_another_party(client):
    br = await token_for("BR")
    r = await client.post(TOKENS, json=body(party="FR"), headers=bearer(br))
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await count_tokens() == 1


async def test_party_mint_defaults_to_its_own_party(client):
    br = await token_for("BR")
    r = await client.post(TOKENS, json=body(party=None), headers=bearer(br))
    assert r.status_code == 201, r.text
    assert (r.json()["party"], r.json()["kind"]) == ("BR", "party")
    me = (await client.get(WHOAMI, headers=bearer(r.json()["token"]))).json()
    assert (me["kind"], me["party"]) == ("party", "BR")


async def test_minter_cannot_grant_scopes_it_lacks(client):
    br = await token_for("BR", "tokens:write", "records:write")
    r = await client.post(TOKENS, json=body(scopes=["records:write", "records:publish"]), headers=bearer(br))
    assert r.status_code == 403, r.text
    assert "records:publish" in r.json()["detail"]
    r = await client.post(TOKENS, json=body(scopes=["admin"]), headers=bearer(br))
    assert r.status_code == 403
    sec_limited = await token_for(None, "tokens:write")
    r = await client.post(TOKENS, json=body(party=None, scopes=["admin"]), headers=bearer(sec_limited))
    assert r.status_code == 403
    assert await count_tokens() == 2


async def test_minting_needs_tokens_write(client):
    r = await client.post(TOKENS, json=body())
    assert r.status_code == 401
    br = await token_for("BR", "records:write")
    r = await client.post(TOKENS, json=body(), headers=bearer(br))
    assert r.status_code == 403
    assert "tokens:write" in r.json()["detail"]


@pytest.mark.parametrize("days", [0, -1, 367, 10_000])
async def test_expiry_out_of_range_is_invalid(client, days):
    sec = await token_for(None)
    r = await client.post(TOKENS, json=body(days=days), headers=bearer(sec))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["body", "expires_days"]


async def test_expiry_is_mandatory_and_366_days_is_the_maximum(client):
    sec = await token_for(None)
    no_expiry = {k: v for k, v in body().items() if k != "expires_days"}
    assert (await client.post(TOKENS, json=no_expiry, headers=bearer(sec))).status_code == 422
    created = await mint(client, sec, days=366)
    assert created["expires_at"] > created["created_at"]


async def test_unknown_scope_and_unknown_party_are_invalid(client):
    sec = await token_for(None)
    r = await client.post(TOKENS, json=body(scopes=["records:write", "root", "records:delete"]), headers=bearer(sec))
    assert r.status_code == 422, r.text
    err = r.json()
    assert "records:delete" in err["detail"] and "root" in err["detail"]
    assert err["errors"][0]["loc"] == ["body", "scopes"]
    r = await client.post(TOKENS, json=body(party="ZZ"), headers=bearer(sec))
    assert r.status_code == 422
    assert "ZZ" in r.json()["detail"]
    r = await client.post(TOKENS, json=body(party=None) | {"extra": 1}, headers=bearer(sec))
    assert r.status_code == 422


async def test_party_tokens_cannot_hold_secretariat_scopes(client):
    sec = await token_for(None)
    r = await client.post(TOKENS, json=body(scopes=["decisions:write"]), headers=bearer(sec))
    assert r.status_code == 422, r.text


async def test_list_shows_metadata_only_and_parties_see_their_own(client):
    sec = await token_for(None)
    br = await token_for("BR")
    await mint(client, sec, party="FR")
    await mint(client, br, party="BR")
    r = await client.get(TOKENS, headers=bearer(sec))
    assert r.status_code == 200
    items = r.json()["items"]
    assert sorted((t["party"] or "-", t["kind"]) for t in items) == [
        ("-", "secretariat"),
        ("BR", "party"),
        ("BR", "party"),
        ("FR", "party"),
    ]
    assert all("token" not in t for t in items)
    mine = (await client.get(TOKENS, headers=bearer(br))).json()["items"]
    assert [t["party"] for t in mine] == ["BR", "BR"]
    fr_id = next(t["id"] for t in items if t["party"] == "FR")
    assert (await client.get(f"{TOKENS}/{fr_id}", headers=bearer(br))).status_code == 404
    one = await client.get(f"{TOKENS}/{fr_id}", headers=bearer(sec))
    assert one.status_code == 200 and one.json()["party"] == "FR"
    assert (await client.get(TOKENS)).status_code == 401
    assert (await client.get(TOKENS, headers=bearer(await token_for("BR", "records:write")))).status_code == 403


async def test_list_is_keyset_paged(client):
    sec = await token_for(None)
    made = [(await mint(client, sec, name=f"t{i}"))["id"] for i in range(5)]
    seen, url = [], f"{TOKENS}?limit=2"
    while url:
        r = await client.get(url, headers=bearer(sec))
        assert r.status_code == 200
        seen += [t["id"] for t in r.json()["items"]]
        nxt = r.json()["next_cursor"]
        url = f"{TOKENS}?limit=2&cursor={nxt}" if nxt else ""
    assert len(seen) == 6 and set(made) <= set(seen)
    assert seen[:5] == list(reversed(made))


async def test_revocation_takes_effect_on_the_very_next_request(client):
    sec = await token_for(None)
    created = await mint(client, sec)
    victim = bearer(created["token"])
    assert (await client.get(WHOAMI, headers=victim)).status_code == 200
    r = await client.delete(f"{TOKENS}/{created['id']}", headers=bearer(sec))
    assert r.status_code == 204, r.text
    r = await client.get(WHOAMI, headers=victim)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
    meta = (await client.get(f"{TOKENS}/{created['id']}", headers=bearer(sec))).json()
    assert meta["revoked_at"] is not None
    assert (await client.delete(f"{TOKENS}/{created['id']}", headers=bearer(sec))).status_code == 204


async def test_party_revokes_own_tokens_but_not_another_partys(client):
    sec = await token_for(None)
    fr = await mint(client, sec, party="FR")
    br_minter = await token_for("BR", "tokens:write", "records:write")
    br = await mint(client, br_minter, party="BR")
    r = await client.delete(f"{TOKENS}/{fr['id']}", headers=bearer(br_minter))
    # 404 like GET and like an id that does not exist: the answer never tells whether another Party's token exists
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    missing = await client.delete(f"{TOKENS}/{uuid.uuid4()}", headers=bearer(br_minter))
    assert missing.status_code == 404 and missing.json()["detail"].startswith("no token with id")
    assert (await client.get(f"{TOKENS}/{fr['id']}", headers=bearer(br_minter))).status_code == 404
    assert (await client.get(WHOAMI, headers=bearer(fr["token"]))).status_code == 200
    no_write = await token_for("BR", "records:write")
    assert (await client.delete(f"{TOKENS}/{br['id']}", headers=bearer(no_write))).status_code == 403
    assert (await client.delete(f"{TOKENS}/{br['id']}", headers=bearer(br_minter))).status_code == 204
    assert (await client.get(WHOAMI, headers=bearer(br["token"]))).status_code == 401
    assert (await client.delete(f"{TOKENS}/{uuid.uuid4()}", headers=bearer(sec))).status_code == 404


async def test_mint_and_revoke_leave_audit_events(client):
    sec = await token_for(None)
    sec_id = (await client.get(WHOAMI, headers=bearer(sec))).json()["token_id"]
    created = await mint(client, sec, party="BR")
    await client.delete(f"{TOKENS}/{created['id']}", headers=bearer(sec))
    events = await audit()
    assert [(e["action"], e["kind"]) for e in events] == [("token.create", "token")] * 2 + [("token.revoke", "token")]
    assert events[0]["token_id"] is None  # the bootstrap (CLI) token has no minting token
    assert str(events[1]["token_id"]) == sec_id and events[1]["entity_id"] == created["id"]
    assert events[1]["party"] == "BR" and events[2]["principal"] == "SECRETARIAT"
    async with db.read_connection() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM changes"))).scalar() == 0


async def test_last_used_at_is_recorded(client):
    sec = await token_for(None)
    await client.get(WHOAMI, headers=bearer(sec))
    items = (await client.get(TOKENS, headers=bearer(sec))).json()["items"]
    assert items[0]["last_used_at"] is not None


async def count_tokens() -> int:
    async with db.read_connection() as conn:
        return (await conn.execute(text("SELECT count(*) FROM api_tokens"))).scalar()
