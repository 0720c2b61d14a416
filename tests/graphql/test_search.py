"""GraphQL `search` answers what GET /api/v1/search answers (same service, same parameters)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.search import set_backend, worker
from app.search.postgres import PostgresBackend
from tests.graphql import as_rest, data, error, gql
from tests.search.util import create_draft, publish_new

pytestmark = pytest.mark.asyncio
HITS = "hits { kind id uid party type revision date title lang score highlights } facets estimatedTotal processingMs"


@pytest.fixture
async def backend(engine: object) -> AsyncIterator[PostgresBackend]:
    b = PostgresBackend()
    set_backend(b)
    yield b
    set_backend(None)


async def test_search_matches_rest(client, backend):
    await publish_new(title={"en": "Biodiversity strategy of Brazil", "fr": "Stratégie de biodiversité"})
    await publish_new(title={"en": "Marine biodiversity atlas"}, party="FR", type="news")
    await publish_new(title={"en": "Coral reefs"})
    await create_draft(title={"en": "Secret biodiversity draft"})
    await worker.drain(backend)
    cases = [
        ({"q": "biodiversty"}, '(q: "biodiversty")'),
        ({"q": "biodiversity", "party": "FR", "facets": "type,party"}, '(q: "biodiversity", party: "FR", '
                                                                       'facets: ["type", "party"])'),
        ({"q": "biodiversity", "lang": "fr", "limit": 1, "offset": 1}, '(q: "biodiversity", lang: FR, limit: 1, '
                                                                       "offset: 1)"),
    ]  # fmt: skip
    for params, args in cases:
        rest = (await client.get("/api/v1/search", params=params)).json()
        graph = data(await gql(client, f"{{ search{args} {{ {HITS} }} }}"))["search"]
        assert graph["hits"] and as_rest(graph["hits"]) == rest["hits"], params
        assert graph["facets"] == rest["facets"] and graph["estimatedTotal"] == rest["estimated_total"]
    titles = {h["title"] for h in data(await gql(client, f'{{ search(q: "biodiversity") {{ {HITS} }} }}'))["search"]
              ["hits"]}  # fmt: skip
    assert "Secret biodiversity draft" not in titles
    bad = error(await gql(client, '{ search(kind: "poem") { estimatedTotal } }'))
    assert bad["extensions"]["code"] == "BAD_REQUEST"
