"""GraphQL tests, and their helpers: POST /graphql, compare with REST, count SQL statements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app import db

RECORD = ("id uid partyCode type status revision titleI18n summaryI18n bodyI18n languages links { url name language }"
          " keywords subjects gbfTargets aichiTargets countries publicationDate externalId createdAt updatedAt"
          " publishedAt withdrawnAt draftStatus draftUpdatedAt")  # fmt: skip
CONTACT = "{ name email organization }"
NODE = (f"id partyCode nameI18n descriptionI18n url languages status platform focalPoint {CONTACT} feedUrl"
        " createdAt updatedAt")  # fmt: skip
DECISION = ("id code symbol body session number titleI18n meeting { code place start end } adoptedOn status subjects"
            " gbfTargets aichiTargets url createdAt updatedAt")  # fmt: skip
PARAGRAPHS = "paragraphs { number section type textI18n actors status }"
OFFER = (f"id requestId providerPartyCode providerOrganization descriptionI18n contact {CONTACT} status createdAt"
         " updatedAt")  # fmt: skip
REQUEST = (f"id partyCode titleI18n problemI18n objectivesI18n assistanceTypes subjects gbfTargets countries startDate"
           f" endDate contact {CONTACT} status createdAt updatedAt")  # fmt: skip


async def gql(client: Any, query: str, variables: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """POST a GraphQL operation and return the JSON body (always a 200 with data and/or errors)."""
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def data(body: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a successful response."""
    assert not body.get("errors"), body
    return body["data"]


def error(body: dict[str, Any]) -> dict[str, Any]:
    """The single error of a failed response."""
    assert body.get("errors") and len(body["errors"]) == 1, body
    return body["errors"][0]


def _snake(name: str) -> str:
    name = re.sub(r"([A-Z])", r"_\1", name).lower()
    name = name.removesuffix("_i18n")
    return name.removesuffix("_code") if name in ("party_code", "provider_party_code") else name


ENUM_FIELDS = ("type", "status", "draftStatus")  # GraphQL enums: `IN_DISCUSSION` is REST's `in-discussion`


def _value(key: str, value: Any) -> Any:
    if key in ENUM_FIELDS and isinstance(value, str) and value.isupper():
        return value.lower().replace("_", "-")
    return as_rest(value)


def as_rest(value: Any) -> Any:
    """A GraphQL object under REST names (`titleI18n` → `title`, `partyCode` → `party`, camelCase → snake_case)
    and values (enum members as the REST strings)."""
    if isinstance(value, dict):
        return {_snake(k): _value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_rest(v) for v in value]
    return value


def same(graphql_item: dict[str, Any], rest_item: dict[str, Any], *, missing: frozenset[str] = frozenset()) -> None:
    """The GraphQL item carries every REST field (but `missing`) with the same value."""
    mapped = as_rest(graphql_item)
    assert set(rest_item) - set(mapped) <= missing, set(rest_item) - set(mapped)
    assert mapped == {k: rest_item[k] for k in mapped}


@contextmanager
def count_sql() -> Iterator[list[str]]:
    """Every SQL statement sent on the engine inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sync_engine = db.get_engine().sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
