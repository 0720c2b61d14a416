"""GraphQL: query cost refuses amplification before any SQL, honest nested pages pass; NUL bytes in
literals and variables are INVALID; suggestions are hidden when introspection is off."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.graphql import limits
from app.graphql.schema import graphql_router
from app.settings import Settings
from tests.factories import create_node, create_record
from tests.graphql import count_sql, data, error, gql

pytestmark = pytest.mark.asyncio

NESTED = "records(first: 100) { nodes { id titleI18n party { records(first: 100) { nodes { id titleI18n } } } } }"
AMPLIFICATION = "{ " + " ".join(f"a{i}: {NESTED}" for i in range(29)) + " }"
NATIONAL_SITE = """query($code: String!) { party(code: $code) { code name
  records(first: 20) { nodes { id uid title summary publicationDate keywords
    party { code nodes { nodes { id name url status platform } } } } }
  nodes { nodes { id name url } } } }"""


async def test_amplification_is_refused_before_any_sql(client) -> None:  # type: ignore[no-untyped-def]
    with count_sql() as statements:
        err = error(await gql(client, AMPLIFICATION))
    assert err["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert err["extensions"]["cost"] > limits.MAX_COST and str(err["extensions"]["cost"]) in err["message"]
    assert statements == []


async def test_honest_national_site_query_passes(client, engine) -> None:  # type: ignore[no-untyped-def]
    from app import db

    async with db.transaction() as s:
        for _ in range(25):
            await create_record(s, party="BR")
        await create_node(s, party="BR")
    got = data(await gql(client, NATIONAL_SITE, {"code": "BR"}))
    assert len(got["party"]["records"]["nodes"]) == 20
    assert got["party"]["records"]["nodes"][0]["party"]["nodes"]["nodes"]


@pytest.mark.parametrize(("query", "variables"), [
    ('{ party(code: "B\\u0000") { code } }', None),
    ("query($c: String!) { party(code: $c) { code } }", {"c": "B\u0000"}),
    ('{ search(q: "a\\u0000b") { estimatedTotal } }', None),
    ('{ records(filter: {party: "B\\u0000"}) { nodes { id } } }', None),
])  # fmt: skip
async def test_nul_bytes_are_invalid(client, query, variables) -> None:  # type: ignore[no-untyped-def]
    with count_sql() as statements:
        err = error(await gql(client, query, variables))
    assert err["extensions"]["code"] == "INVALID", err
    assert statements == []
    assert "errors" not in await gql(client, "{ vocabularies }")


async def test_no_suggestions_without_introspection(engine) -> None:  # type: ignore[no-untyped-def]
    app = FastAPI()
    app.include_router(graphql_router(Settings(CHM_GRAPHQL_INTROSPECTION=False)))  # type: ignore[call-arg]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for query in ("{ record { id } recrods { nodes { id } } }", "{ records(sort: NEWST) { nodes { id } } }"):
            err = (await gql(c, query))["errors"]
            assert err and not any("Did you mean" in e["message"] for e in err), err


async def test_a_remembered_cost_follows_the_page_size_variables(client) -> None:  # type: ignore[no-untyped-def]
    """The cost is remembered per document, operation and integer variables: the same query text asks for
    small pages (passes), then pages large enough to go over the budget (refused), then small ones again."""
    page = "records(first: $n) { nodes { id titleI18n party { records(first: $n) { nodes { id titleI18n } } } } }"
    query = "query($n: Int) { " + " ".join(f"a{i}: {page}" for i in range(3)) + " }"
    assert "errors" not in await gql(client, query, {"n": 5})
    err = error(await gql(client, query, {"n": 100}))
    assert err["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "errors" not in await gql(client, query, {"n": 5})
