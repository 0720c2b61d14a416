"""GraphQL reads return exactly what the REST reads return: records, parties, vocabularies, nodes, decisions,
cooperation requests; language fallback; visibility."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from app import db
from tests.auth import bearer, token_for
from tests.factories import create_decision, create_node, create_record, create_request
from tests.graphql import DECISION, NODE, OFFER, PARAGRAPHS, RECORD, REQUEST, as_rest, data, error, gql, same

pytestmark = pytest.mark.asyncio


async def make_records(n: int, **overrides: object) -> list[dict]:
    async with db.transaction() as s:
        return [await create_record(s, **overrides) for _ in range(n)]


async def walk(client, field: str, fields: str, args: str = "", first: int = 3, headers: dict | None = None) -> list:
    """Every node of a connection, page by page through `after`."""
    seen, after = [], None
    while True:
        query = (
            f"query($after: String) {{ {field}(first: {first}, after: $after{args}) {{ nodes {{ {fields} }} "
            "edges { cursor } pageInfo { hasNextPage endCursor } } }"
        )
        conn = data(await gql(client, query, {"after": after}, headers))[field]
        seen.extend(conn["nodes"])
        assert len(conn["edges"]) == len(conn["nodes"])
        if not conn["pageInfo"]["hasNextPage"]:
            assert conn["pageInfo"]["endCursor"] is None
            return seen
        after = conn["pageInfo"]["endCursor"]
        assert conn["edges"][-1]["cursor"] == after


async def rest_all(client, url: str, headers: dict | None = None) -> list:
    items, cursor = [], None
    while True:
        r = await client.get(url, params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=headers or {})
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        if not (cursor := r.json()["next_cursor"]):
            return items


async def test_records_list_pages_like_rest(client):
    await make_records(7, links=[{"url": "https://example.org/a", "name": "A", "language": "en"}],
                       publication_date=date(2024, 5, 1), subjects=["CBD-SUBJECT-MARINE"])  # fmt: skip
    await make_records(2, status="draft")
    rest = await rest_all(client, "/api/v1/records")
    graph = await walk(client, "records", RECORD)
    assert len(rest) == 7 and len(graph) == 7
    for g, r in zip(graph, rest, strict=True):
        same(g, r)
    # The REST next_cursor and the GraphQL endCursor are the same opaque cursor.
    page = (await client.get("/api/v1/records?limit=3")).json()
    body = data(await gql(client, "{ records(first: 3) { pageInfo { endCursor } } }"))
    assert body["records"]["pageInfo"]["endCursor"] == page["next_cursor"]


async def test_records_filters_and_sort_mirror_rest(client):
    await make_records(3, party="FR", type="news", gbf_targets=["GBF-TARGET-03"])
    await make_records(3, party="BR")
    cases = [
        ("party=FR&type=news&gbf_target=GBF-TARGET-03", '{party: "FR", type: NEWS, gbfTarget: "GBF-TARGET-03"}',
         None),
        ("updated_since=2025-01-01T00:00:00Z&sort=updated_at", '{updatedSince: "2025-01-01T00:00:00Z"}', "UPDATED_AT"),
        ("sort=-published_at", "{}", "PUBLISHED_AT_DESC"),
    ]  # fmt: skip
    for qs, filt, sort in cases:
        rest = (await client.get(f"/api/v1/records?{qs}")).json()["items"]
        sort_arg = f", sort: {sort}" if sort else ""
        graph = data(await gql(client, f"{{ records(filter: {filt}{sort_arg}) {{ nodes {{ {RECORD} }} }} }}"))
        assert [g["id"] for g in graph["records"]["nodes"]] == [r["id"] for r in rest], qs
    # An enum filter takes only its members (GraphQL refuses the rest before any resolver runs); other bad filter
    # values are the same 400-style errors as REST, with the same locations.
    err = error(await gql(client, '{ records(filter: {type: "poem"}) { nodes { id } } }'))
    assert err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "poem" in err["message"]
    err = error(await gql(client, '{ records(filter: {party: "XX"}) { nodes { id } } }'))
    assert err["extensions"]["code"] == "BAD_REQUEST" and err["extensions"]["errors"][0]["loc"] == ["query", "party"]
    err = error(await gql(client, '{ records(after: "garbage") { nodes { id } } }'))
    assert err["extensions"]["code"] == "BAD_REQUEST" and "cursor" in err["message"]


async def test_single_record_by_id_and_uid_and_revision(client):
    (rec,) = await make_records(1, revision=2)
    rest = (await client.get(f"/api/v1/records/{rec['id']}")).json()
    by_id = data(await gql(client, f'{{ record(id: "{rec["id"]}") {{ {RECORD} }} }}'))["record"]
    same(by_id, rest)
    by_uid = data(await gql(client, f'{{ record(uid: "{rest["uid"]}") {{ {RECORD} }} }}'))["record"]
    same(by_uid, rest)
    old_uid = rest["uid"][:-1] + "1"
    rest_old = (await client.get(f"/api/v1/records/by-uid/{old_uid}")).json()
    same(data(await gql(client, f'{{ record(uid: "{old_uid}") {{ {RECORD} }} }}'))["record"], rest_old)
    revs = (await client.get(f"/api/v1/records/{rec['id']}/revisions")).json()["items"]
    q = f'{{ recordRevisions(id: "{rec["id"]}") {{ nodes {{ recordId uid revision publishedAt content }} }} }}'
    graph_revs = data(await gql(client, q))["recordRevisions"]["nodes"]
    assert [g["revision"] for g in graph_revs] == [2, 1]
    for g, r in zip(graph_revs, revs, strict=True):
        same(g, r)
    assert error(await gql(client, "{ record { id } }"))["extensions"]["code"] == "BAD_REQUEST"
    missing = error(await gql(client, f'{{ record(id: "{uuid.uuid4()}") {{ id }} }}'))
    assert missing["extensions"]["code"] == "NOT_FOUND" and missing["path"] == ["record"]


async def test_withdrawn_record_is_gone_with_its_tombstone(client):
    (rec,) = await make_records(1, status="withdrawn")
    rest = (await client.get(f"/api/v1/records/{rec['id']}")).json()
    err = error(await gql(client, f'{{ record(id: "{rec["id"]}") {{ id }} }}'))
    assert err["extensions"]["code"] == "GONE" and err["extensions"]["tombstone"] == rest["tombstone"]


async def test_lang_falls_back_to_english_then_any_language(client):
    (rec,) = await make_records(1, title={"en": "Forests", "fr": "Forêts"}, summary={"es": "Resumen"})
    q = (
        f'{{ record(id: "{rec["id"]}") {{ fr: title(lang: FR) zh: title(lang: ZH) plain: title '
        "sum: summary(lang: AR) titleI18n party { name(lang: FR) en: name } } }"
    )
    got = data(await gql(client, q))["record"]
    assert got["fr"] == "Forêts" and got["zh"] == "Forests" and got["plain"] == "Forests"
    assert got["sum"] == "Resumen" and got["titleI18n"] == {"en": "Forests", "fr": "Forêts"}
    assert got["party"] == {"name": "Brésil", "en": "Brazil"}
    assert (
        error(await gql(client, "{ records { nodes { title(lang: XX) } } }"))["extensions"]["code"]
        == "GRAPHQL_VALIDATION_FAILED"
    )


async def test_drafts_are_invisible_to_anonymous_and_other_parties(client):
    (draft,) = await make_records(1, status="draft")
    (public,) = await make_records(1)
    br = bearer(await token_for("BR", "records:write"))
    fr = bearer(await token_for("FR", "records:write"))
    q = "{ records { nodes { id } } }"
    for headers, expected in (({}, {public["id"]}), (fr, {public["id"]}), (br, {public["id"], draft["id"]})):
        ids = {n["id"] for n in data(await gql(client, q, headers=headers))["records"]["nodes"]}
        assert ids == {str(i) for i in expected}
    single = f'{{ record(id: "{draft["id"]}") {{ id status }} }}'
    assert error(await gql(client, single))["extensions"]["code"] == "NOT_FOUND"
    assert data(await gql(client, single, headers=br))["record"]["status"] == "DRAFT"
    nested = '{ party(code: "BR") { records { nodes { id } } } }'
    assert data(await gql(client, nested))["party"]["records"]["nodes"] == [{"id": str(public["id"])}]
    drafts = "{ records(filter: {status: DRAFT}) { nodes { id } } }"
    assert data(await gql(client, drafts, headers=fr))["records"]["nodes"] == []


async def test_parties_and_vocabularies_like_rest(client):
    rest = await rest_all(client, "/api/v1/parties")
    graph = await walk(client, "parties", "code nameI18n isParty", first=50)
    assert len(graph) == len(rest) >= 196
    for g, r in zip(graph, rest, strict=True):
        same(g, r)
    same(data(await gql(client, '{ party(code: "eu") { code nameI18n isParty } }'))["party"],
         (await client.get("/api/v1/parties/EU")).json())  # fmt: skip
    assert error(await gql(client, '{ party(code: "XX") { code } }'))["extensions"]["code"] == "NOT_FOUND"
    names = (await client.get("/api/v1/vocabularies")).json()["items"]
    assert data(await gql(client, "{ vocabularies }"))["vocabularies"] == names
    for name in names:
        rest_vocab = (await client.get(f"/api/v1/vocabularies/{name}")).json()
        fields = "code titleI18n descriptionI18n broader narrower extra"
        q = f'{{ vocabulary(name: "{name}") {{ name terms {{ {fields} }} }} }}'
        same(data(await gql(client, q))["vocabulary"], rest_vocab)


async def test_party_nests_its_records_nodes_and_requests(client):
    mine = await make_records(3, party="KE")
    await make_records(2, party="FR")
    async with db.transaction() as s:
        node = await create_node(s, party="KE")
        req = await create_request(s, party="KE", offers=[{"provider_party": "FR"}])
    q = (
        '{ party(code: "KE") { code records(first: 2) { nodes { id party { code } } pageInfo { hasNextPage'
        " endCursor } } nodes { nodes { id party { code } } } cooperationRequests { nodes { id offers { nodes {"
        " providerParty { code } } } } } } }"
    )
    got = data(await gql(client, q))["party"]
    newest = sorted(mine, key=lambda r: r["updated_at"], reverse=True)
    assert [n["id"] for n in got["records"]["nodes"]] == [str(r["id"]) for r in newest[:2]]
    assert got["records"]["pageInfo"]["hasNextPage"] is True
    after = got["records"]["pageInfo"]["endCursor"]
    rest = (await client.get("/api/v1/records?party=KE&limit=2")).json()
    assert after == rest["next_cursor"]
    q2 = f'{{ party(code: "KE") {{ records(first: 2, after: "{after}") {{ nodes {{ id }} }} }} }}'
    assert [n["id"] for n in data(await gql(client, q2))["party"]["records"]["nodes"]] == [str(newest[2]["id"])]
    assert got["nodes"]["nodes"] == [{"id": str(node["id"]), "party": {"code": "KE"}}]
    assert got["cooperationRequests"]["nodes"] == [
        {"id": str(req["id"]), "offers": {"nodes": [{"providerParty": {"code": "FR"}}]}}
    ]


async def test_nodes_like_rest(client):
    async with db.transaction() as s:
        for i in range(5):
            await create_node(s, party="BR" if i % 2 else "FR", description={"fr": "Description"},
                              focal_point={"name": "Ana", "email": "ana@example.org"})  # fmt: skip
    rest = await rest_all(client, "/api/v1/nodes")
    graph = await walk(client, "nationalNodes", NODE)
    assert len(graph) == 5
    for g, r in zip(graph, rest, strict=True):
        same(g, r)
    filtered = (await client.get("/api/v1/nodes?party=FR&sort=party")).json()["items"]
    q = '{ nationalNodes(filter: {party: "FR"}, sort: PARTY) { nodes { id } } }'
    assert [n["id"] for n in data(await gql(client, q))["nationalNodes"]["nodes"]] == [r["id"] for r in filtered]
    one = rest[0]["id"]
    same(data(await gql(client, f'{{ nationalNode(id: "{one}") {{ {NODE} }} }}'))["nationalNode"],
         (await client.get(f"/api/v1/nodes/{one}")).json())  # fmt: skip


async def test_decisions_like_rest(client):
    async with db.transaction() as s:
        await create_decision(
            s,
            session=15,
            number=4,
            meeting={"code": "COP-15", "place": "Montreal", "start": "2022-12-07", "end": "2022-12-19"},
            adopted_on=date(2022, 12, 19),
            paragraphs=[
                {"number": "1", "type": "operative", "text": {"en": "Adopts"}, "actors": []},
                {"type": "preambular", "text": {"fr": "Rappelant"}, "actors": ["Parties"]},
            ],
        )
        await create_decision(s, session=9, number=30)
        await create_decision(s, body="CP-MOP", session=10, number=2)
    rest = await rest_all(client, "/api/v1/decisions")
    graph = await walk(client, "decisions", DECISION)
    assert [g["code"] for g in graph] == [r["code"] for r in rest]
    for g, r in zip(graph, rest, strict=True):
        same(g, r, missing=frozenset({"paragraphs"}))
    single = (await client.get("/api/v1/decisions/cop-15-4")).json()
    same(data(await gql(client, f'{{ decision(code: "cop-15-4") {{ {DECISION} {PARAGRAPHS} }} }}'))["decision"], single)
    listed = data(await gql(client, f'{{ decisions(filter: {{body: "COP"}}) {{ nodes {{ code {PARAGRAPHS} }} }} }}'))
    by_code = {d["code"]: as_rest(d["paragraphs"]) for d in listed["decisions"]["nodes"]}
    assert by_code["COP-15-4"] == single["paragraphs"] and by_code["COP-9-30"] == []
    assert len(by_code["COP-15-4"]) == 2 and set(by_code) == {"COP-15-4", "COP-9-30"}  # body filter: no CP-MOP


async def test_cooperation_requests_like_rest(client):
    async with db.transaction() as s:
        for i in range(4):
            await create_request(s, party="KE" if i % 2 else "BR", problem={"en": "Problem"},
                                 contact={"name": "Desk", "email": "desk@example.org"},
                                 offers=[{"provider_party": "FR"}, {"provider_party": None,
                                                                    "provider_organization": "IUCN"}])  # fmt: skip
    rest = await rest_all(client, "/api/v1/cooperation-requests")
    graph = await walk(client, "cooperationRequests", REQUEST)
    assert len(graph) == 4
    for g, r in zip(graph, rest, strict=True):
        same(g, r, missing=frozenset({"offers"}))
    one = rest[0]["id"]
    single = (await client.get(f"/api/v1/cooperation-requests/{one}")).json()
    got = data(
        await gql(client, f'{{ cooperationRequest(id: "{one}") {{ {REQUEST} offers {{ nodes {{ {OFFER} }} }} }} }}')
    )
    got["cooperationRequest"]["offers"] = got["cooperationRequest"]["offers"]["nodes"]
    same(got["cooperationRequest"], single)
    q = f"{{ cooperationRequests {{ nodes {{ id offers(first: 10) {{ nodes {{ {OFFER} }} }} }} }} }}"
    listed = {n["id"]: n["offers"]["nodes"] for n in data(await gql(client, q))["cooperationRequests"]["nodes"]}
    assert listed[one] == got["cooperationRequest"]["offers"]


PAGE = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor }"


def _page_like_rest(conn: dict, rest: dict, *, after: str | None) -> None:
    """A GraphQL connection page holds the REST page's items, cursor and a complete PageInfo."""
    assert [n["id"] for n in conn["nodes"]] == [i["id"] for i in rest["items"]]
    info = conn["pageInfo"]
    assert info["hasNextPage"] is (rest["next_cursor"] is not None)
    assert info["endCursor"] == rest["next_cursor"]
    assert info["hasPreviousPage"] is (after is not None)
    assert info["startCursor"] == (conn["edges"][0]["cursor"] if conn["nodes"] else None)


async def test_nested_lists_are_connections_paged_like_rest(client):
    async with db.transaction() as s:
        for _ in range(3):
            await create_node(s, party="KE")
            await create_request(s, party="KE")
        await create_node(s, party="FR")
        req = await create_request(s, party="KE", offers=[{"provider_party": p} for p in ("FR", "DE", "BE")])
    for field, rest_url in (
        ("nodes", "/api/v1/nodes?party=KE"),
        ("cooperationRequests", "/api/v1/cooperation-requests?party=KE"),
    ):
        rest = (await client.get(f"{rest_url}&limit=2")).json()
        q = f'{{ party(code: "KE") {{ {field}(first: 2) {{ nodes {{ id }} {PAGE} }} }} }}'
        first = data(await gql(client, q))["party"][field]
        _page_like_rest(first, rest, after=None)
        after = first["pageInfo"]["endCursor"]
        rest2 = (await client.get(f"{rest_url}&limit=2&cursor={after}")).json()
        q2 = f'{{ party(code: "KE") {{ {field}(first: 2, after: "{after}") {{ nodes {{ id }} {PAGE} }} }} }}'
        _page_like_rest(data(await gql(client, q2))["party"][field], rest2, after=after)
        assert len(rest["items"]) + len(rest2["items"]) == (3 if field == "nodes" else 4)

    offers_url = f"/api/v1/cooperation-requests/{req['id']}/offers"
    rest = (await client.get(f"{offers_url}?limit=2")).json()
    single = f'{{ cooperationRequest(id: "{req["id"]}") {{ offers(first: 2) {{ nodes {{ id }} {PAGE} }} }} }}'
    from_single = data(await gql(client, single))["cooperationRequest"]["offers"]
    _page_like_rest(from_single, rest, after=None)
    listed = (f'{{ cooperationRequests(filter: {{party: "KE"}}) {{ nodes {{ id offers(first: 2) {{ nodes {{ id }} '
              f"{PAGE} }} }} }} }}")  # fmt: skip
    by_id = {n["id"]: n["offers"] for n in data(await gql(client, listed))["cooperationRequests"]["nodes"]}
    assert by_id[str(req["id"])] == from_single  # the DataLoader page equals the page of the single read
    assert all(o["nodes"] == [] and o["pageInfo"]["hasNextPage"] is False
               for i, o in by_id.items() if i != str(req["id"]))  # fmt: skip
    after = rest["next_cursor"]
    rest2 = (await client.get(f"{offers_url}?limit=2&cursor={after}")).json()
    q2 = (f'{{ cooperationRequest(id: "{req["id"]}") {{ offers(first: 2, after: "{after}") {{ nodes {{ id }} '
          f"{PAGE} }} }} }}")  # fmt: skip
    _page_like_rest(data(await gql(client, q2))["cooperationRequest"]["offers"], rest2, after=after)
    assert len(rest["items"]) == 2 and len(rest2["items"]) == 1


async def test_nested_page_size_is_checked_like_rest(client):
    err = error(await gql(client, '{ party(code: "KE") { nodes(first: 0) { nodes { id } } } }'))
    assert err["extensions"]["code"] == "INVALID"
