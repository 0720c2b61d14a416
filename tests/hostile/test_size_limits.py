"""Size limits are checked while reading, before parsing: bodies per route family, headers, GraphQL documents."""

from __future__ import annotations

import pytest

from app.graphql import limits
from tests.auth import bearer, token_for

pytestmark = pytest.mark.asyncio
MB = 1 << 20


def problem(r, status: int) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, (r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_declared_body_over_the_cap_is_refused_unread(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))
    big = b'{"type": "resource", "title": {"en": "' + b"x" * (MB + 10) + b'"}}'
    r = await client.post("/api/v1/records", content=big, headers={**br, "content-type": "application/json"})
    problem(r, 413)
    assert r.json()["limit"] == MB


async def test_chunked_body_is_cut_at_the_cap(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"type": "resource", "title": {"en": "'
        for _ in range(20):
            yield b"x" * (64 << 10)
        yield b'"}}'

    r = await client.post("/api/v1/records", content=chunks(), headers={**br, "content-type": "application/json"})
    problem(r, 413)


async def test_bulk_and_graphql_take_up_to_ten_megabytes(client) -> None:  # type: ignore[no-untyped-def]
    br = bearer(await token_for("BR", "records:write"))
    body = b'{"items": [' + b",".join([b'{"type": "resource", "title": {"en": "t"}, "external_id": "a"}'] * 5) + b"]"
    padded = body + b" " * (2 * MB) + b"}"
    r = await client.post("/api/v1/records/bulk", content=padded, headers={**br, "content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    too_big = body + b" " * (11 * MB) + b"}"
    problem(await client.post("/api/v1/records/bulk", content=too_big,
                              headers={**br, "content-type": "application/json"}), 413)  # fmt: skip
    problem(await client.post("/graphql", content=b'{"query": "{ vocabularies }"' + b" " * (11 * MB) + b"}",
                              headers={"content-type": "application/json"}), 413)  # fmt: skip


async def test_graphql_document_size(client) -> None:  # type: ignore[no-untyped-def]
    doc = "{ vocabularies " + "#" * limits.MAX_DOCUMENT_CHARS + "\n}"
    problem(await client.post("/graphql", json={"query": doc}), 413)


async def test_huge_headers_never_reach_the_application(client) -> None:  # type: ignore[no-untyped-def]
    problem(await client.get("/api/v1/parties", headers={"Authorization": "Bearer " + "a" * (10 * MB)}), 431)
    problem(await client.get("/api/v1/parties", headers={f"x-h{i}": "v" * 1000 for i in range(20)}), 431)
    assert (await client.get("/api/v1/parties", headers={"x-ok": "v" * 1000})).status_code == 200
