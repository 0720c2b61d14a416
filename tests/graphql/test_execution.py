"""The direct path for plain leaf attributes (app/graphql/execution.py) answers exactly what graphql-core's own
field execution answers: values, nulls, enums, lists and nested objects."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from app import db
from app.auth.principal import ANONYMOUS
from app.graphql import limits
from app.graphql.context import Context
from app.graphql.execution import FastExecutionContext
from app.graphql.schema import Mutation, Query, Schema, build_schema
from app.graphql.types.common import DateTimeScalar, resolve_attr
from tests.factories import create_record

pytestmark = pytest.mark.asyncio

QUERY = """
query Page($lang: Lang) {
  records(first: 50) {
    edges { cursor node {
      id uid partyCode type status revision title(lang: $lang) titleI18n summaryI18n bodyI18n languages
      links { url name language } keywords subjects gbfTargets aichiTargets countries publicationDate externalId
      createdAt updatedAt publishedAt withdrawnAt draftStatus draftUpdatedAt
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def _run(schema: Schema) -> bytes:
    context = Context(ANONYMOUS)
    try:
        result = await schema.execute(QUERY, variable_values={"lang": "FR"}, context_value=context)
    finally:
        await context.close()
    return orjson.dumps({"data": result.data, "errors": [e.formatted for e in result.errors or []]})


async def test_same_answer_as_graphql_core(engine):
    async with db.transaction() as session:
        await create_record(session, links=[{"url": "https://example.org", "name": None, "language": "en"}],
                            countries=["BR"], external_id="x-1", summary=None)  # fmt: skip
        await create_record(session, party="FR", type="news", keywords=[], body={"en": "Body", "fr": "Corps"})
    fast = build_schema(introspection=False)
    assert fast.execution_context_class is FastExecutionContext
    config = StrawberryConfig(default_resolver=resolve_attr)
    plain = Schema(query=Query, mutation=Mutation, config=config, scalar_overrides={datetime: DateTimeScalar},
                   extensions=limits.extensions(introspection=False))  # fmt: skip
    ours, theirs = await _run(fast), await _run(plain)
    assert ours == theirs
    page = orjson.loads(ours)
    assert len(page["data"]["records"]["edges"]) == 2 and not page["errors"]


@strawberry.type
class Item:
    name: str
    count: int
    tags: list[str]
    note: str | None


@strawberry.type
class TinyQuery:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [  # services return dicts: the plain attributes are read with resolve_attr
            {"name": "a", "count": 1, "tags": ["x", "y"], "note": None},  # type: ignore[list-item]
            {"name": None, "count": 2, "tags": [], "note": "n"},  # a null for a non-null field: an error
            {"name": "c", "count": "three", "tags": ["z"], "note": None},  # a value that does not coerce
            {"name": "d", "count": 4, "tags": ["ok", None], "note": None},  # a null inside a non-null list
        ]


def _tiny_schema(fast: bool) -> strawberry.Schema:
    config = StrawberryConfig(default_resolver=resolve_attr)
    return strawberry.Schema(query=TinyQuery, config=config,
                             execution_context_class=FastExecutionContext if fast else None)  # fmt: skip


async def test_errors_and_nulls_are_graphql_cores():
    query = "{ items { __typename n: name count tags ...F note again: note } } fragment F on Item { name count }"
    results = []
    for fast in (True, False):
        result = await _tiny_schema(fast).execute(query)
        results.append(orjson.dumps({"data": result.data, "errors": [e.formatted for e in result.errors or []]}))
    assert results[0] == results[1]
    answer = orjson.loads(results[0])
    assert answer["data"]["items"][0] == {"__typename": "Item", "n": "a", "count": 1, "tags": ["x", "y"],
                                          "name": "a", "note": None, "again": None}  # fmt: skip
    assert answer["data"]["items"][1:] == [None, None, None]
    assert len(answer["errors"]) == 3
