"""Schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

GraphQL: values for the `JSON` scalar (lstrings), and a check with the same bar as REST: no 5xx, a JSON
object body, and no error that is not a domain error. Schemathesis' own GraphQL `not_a_server_error` counts
every `errors[]` entry as a failure, including the domain answers this API gives on purpose (NOT_FOUND,
UNAUTHENTICATED, INVALID … in `extensions.code`, mirroring the REST problem codes)."""

from __future__ import annotations

from typing import Any

import graphql
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

LANGS = ("ar", "en", "es", "fr", "ru", "zh")


def _lstring(value: dict[str, str]) -> graphql.ObjectValueNode:
    return nodes.Object([
        graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=nodes.String(v)) for k, v in value.items()
    ])  # fmt: skip


schemathesis.graphql.scalar(
    "JSON", st.dictionaries(st.sampled_from(LANGS), st.text(min_size=1, max_size=40), min_size=1).map(_lstring)
)


@schemathesis.check
def graphql_no_unexpected_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, a JSON object, and every error either a query error or a domain error with its code."""
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}")
    payload = response.json()
    if not isinstance(payload, dict) or not ({"data", "errors"} & set(payload)):
        raise AssertionError("not a GraphQL response object")
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if not code or code == "INTERNAL_SERVER_ERROR":
            raise AssertionError(f"unexpected GraphQL error: {error.get('message')!r} (code {code!r})")
    return None
