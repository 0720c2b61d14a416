"""Limits (depth, aliases, tokens, page size) refuse before any resolver runs; nested data loads in a bounded
number of statements; unexpected errors are masked; GraphiQL and introspection follow the settings."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from app import db
from app.graphql.limits import MAX_FIRST
from app.graphql.schema import graphql_router
from app.services import paging
from app.services import records as records_service
from app.settings import Settings
from tests.factories import create_node, create_record
from tests.graphql import count_sql, data, error, gql

pytestmark = pytest.mark.asyncio
PARTIES = ["BR", "FR", "KE", "IN", "MX", "CN", "DE", "NG", "PE", "ZA"]


async def test_depth_20_is_refused_without_sql(client):
    inner = "party { code }"
    for _ in range(6):
        inner = f"party {{ records(first: 1) {{ nodes {{ {inner} }} }} }}"
    query = f"{{ records(first: 1) {{ nodes {{ {inner} }} }} }}"
    assert query.count("{") > 20
    with count_sql() as statements:
        err = error(await gql(client, query))
    assert (
        err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "exceeds maximum operation depth" in err["message"]
    )
    assert statements == []


async def test_many_aliases_are_refused_without_sql(client):
    thousand = "{ " + " ".join(f"a{i}: vocabularies" for i in range(1000)) + " }"
    thirty_one = "{ " + " ".join(f"a{i}: vocabularies" for i in range(31)) + " }"
    with count_sql() as statements:
        too_long = error(await gql(client, thousand))
        too_many = error(await gql(client, thirty_one))
    assert too_long["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and "tokens" in too_long["message"]
    assert too_many["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "aliases" in too_many["message"]
    assert statements == []
    assert len(data(await gql(client, "{ " + " ".join(f"a{i}: vocabularies" for i in range(30)) + " }"))) == 30


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ records(first: 10000) { nodes { id } } }", {}),
        ("query($n: Int!) { records(first: $n) { nodes { id } } }", {"n": 10000}),
        ("query($n: Int = 201) { parties { nodes { records(first: $n) { nodes { id } } } } }", {}),
        ("{ records { nodes { id } } ...F } fragment F on Query { parties(first: 0) { nodes { code } } }", {}),
    ],
)
async def test_first_above_the_rest_limit_is_refused_before_any_resolver(client, query, variables):
    with count_sql() as statements:
        body = await gql(client, query, variables)
    err = error(body)
    assert body["data"] is None
    assert err["extensions"]["code"] == "INVALID" and "first must be between 1 and 200" in err["message"]
    assert MAX_FIRST == paging.MAX_LIMIT == 200  # one page-size limit for GraphQL `first` and REST `limit`
    assert err["extensions"]["errors"][0]["loc"] == ["args", "first"]
    assert statements == []


async def test_nested_parties_load_in_a_bounded_number_of_statements(client):
    async with db.transaction() as s:
        for i in range(50):
            await create_record(s, party=PARTIES[i % len(PARTIES)])
            await create_node(s, party=PARTIES[(i + 3) % len(PARTIES)])
    query = ("query($n: Int!) { records(first: $n) { nodes { id title party { code name } } }"
             " nationalNodes(first: $n) { nodes { id party { code name(lang: FR) } } } }")  # fmt: skip
    data(await gql(client, query, {"n": 1}))  # warm the reference-data cache
    counts = {}
    for n in (5, 50):
        with count_sql() as statements:
            got = data(await gql(client, query, {"n": n}))
        assert len(got["records"]["nodes"]) == len(got["nationalNodes"]["nodes"]) == n
        assert all(r["party"]["code"] in PARTIES for r in got["records"]["nodes"])
        counts[n] = len(statements)
    # records, nodes, and the Parties of both (one batch, or two when the lists finish in different ticks);
    # one query per item would be 100+ at first: 50.
    assert max(counts.values()) <= 4, counts


async def test_party_lists_batch_their_nested_lists(client):
    async with db.transaction() as s:
        for i in range(30):
            await create_record(s, party=PARTIES[i % len(PARTIES)])
            await create_node(s, party=PARTIES[i % len(PARTIES)])
    query = ("query($n: Int!) { parties(first: $n) { nodes { code records(first: 2) { nodes { id party { code } } }"
             " nodes(first: 2) { nodes { id } } cooperationRequests(first: 2) { nodes { id offers(first: 2)"
             " { nodes { id } } } } } } }")  # fmt: skip
    data(await gql(client, query, {"n": 1}))
    counts = {}
    for n in (5, 100):
        with count_sql() as statements:
            data(await gql(client, query, {"n": n}))
        counts[n] = len(statements)
    # parties, their records, nodes, requests, the offers of those, the records' Parties: never per Party.
    assert max(counts.values()) <= 6, counts


async def test_unexpected_errors_are_masked_and_logged(client, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("password=hunter2 in /srv/app/secret.py")

    monkeypatch.setattr(records_service, "list_records", broken)
    with caplog.at_level(logging.ERROR, logger="chm.graphql"):
        r = await client.post("/graphql", json={"query": "{ records { nodes { id } } vocabularies }"})
    assert r.status_code == 200
    body = r.json()
    assert "hunter2" not in r.text and "Traceback" not in r.text and "secret.py" not in r.text
    err = error(body)
    assert err["extensions"] == {"code": "INTERNAL_SERVER_ERROR"} and err["path"] == ["records"]
    assert body["data"] is None  # records is non-null, so the error nulls the whole data object
    assert "hunter2" in caplog.text  # the operator still sees what happened


async def test_introspection_and_graphiql_follow_the_settings(client):
    intro = "{ __schema { queryType { name } } }"
    assert data(await gql(client, intro))["__schema"]["queryType"]["name"] == "Query"  # development/test: on
    assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code == 200
    prod = Settings(CHM_ENV="production", CHM_SECRET_KEY="k" * 40)
    assert not prod.introspection_enabled and not prod.ide_enabled
    app = FastAPI()
    app.include_router(graphql_router(prod))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        refused = (await gql(c, intro))["errors"][0]
        assert refused["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "introspection" in refused["message"]
        assert (await c.get("/graphql", headers={"Accept": "text/html"})).status_code == 404
        assert data(await gql(c, "{ vocabularies }"))["vocabularies"]


async def test_batched_operations_are_refused(client):
    r = await client.post("/graphql", json=[{"query": "{ vocabularies }"}, {"query": "{ vocabularies }"}])
    assert r.status_code == 400
