"""One mapping from domain errors to GraphQL errors: `extensions.code` (and `extensions.errors` for fields);
anything unexpected is logged and masked."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from graphql import GraphQLError, GraphQLSyntaxError
from pydantic import BaseModel, ValidationError
from strawberry.types.execution import ExecutionContext

from app import db
from app.errors import AppError, Invalid, describe

log = logging.getLogger("chm.graphql")
M = TypeVar("M", bound=BaseModel)
MASKED = "an unexpected error occurred; it has been logged"


def graphql_path(loc: list[str | int]) -> str:
    """A field location in GraphQL's spelling: ["items", 3, "external_id"] → "items[3].externalId"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            head, *rest = str(part).split("_")
            name = head + "".join(w[:1].upper() + w[1:] for w in rest)
            out += f".{name}" if out else name
    return out


def with_paths(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """A bulk item's error with a GraphQL `path` next to each field error's REST-compatible `loc`."""
    if not error or not error.get("errors"):
        return error
    return {**error, "errors": [{**e, "path": graphql_path(e["loc"])} for e in error["errors"]]}


def located(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field errors located the GraphQL way: REST's request `body` is the mutation's `input` argument, and each
    such error also gets its GraphQL `path` (["body", "links", 0, "url"] → loc ["input", "links", 0, "url"],
    path "input.links[0].url"). Other locations (query parameters, `args`) pass unchanged."""
    out = []
    for e in errors:
        loc = e.get("loc")
        if loc and loc[0] == "body":
            loc = ["input", *loc[1:]]
            e = {**e, "loc": loc, "path": graphql_path(loc)}
        out.append(e)
    return out


def invalid(exc: ValidationError) -> Invalid:
    """A pydantic ValidationError as the same INVALID error REST answers."""
    return Invalid.from_pydantic(exc.errors())


def validated(model: type[M], data: dict[str, Any]) -> M:
    """Validate a mutation input with the REST body model, raising INVALID with field locations."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None


def _client_error(error: GraphQLError) -> bool:
    """GraphQL's own refusals (syntax, validation, limits, variable coercion) are the client's to see."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return True
    return error.path is None and bool(error.nodes) and isinstance(original, ValueError | TypeError)


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, extensions=extensions)  # fmt: skip


def to_client(error: GraphQLError) -> GraphQLError:
    """The error a client sees."""
    original = error.original_error
    if isinstance(original, ValidationError):
        original = invalid(original)
    elif original is not None and not isinstance(original, AppError | GraphQLError):
        original = db.as_app_error(original) or original  # database down, timeout, duplicate key ...
    if isinstance(original, AppError):
        extensions: dict[str, Any] = {"code": original.code, **original.extra}
        message = original.detail
        if original.errors:
            extensions["errors"] = located(original.errors)
            if message == describe(original.errors):  # a detail that only names the fields: name them anew
                message = describe(extensions["errors"])
        return _with(error, message, extensions)
    if _client_error(error):
        if error.extensions and "code" in error.extensions:
            return error
        code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else "GRAPHQL_VALIDATION_FAILED"
        return _with(error, error.message, {"code": code})
    return _with(error, MASKED, {"code": "INTERNAL_SERVER_ERROR"})


def log_unexpected(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log what will be masked, with its traceback; domain and client errors are not news."""
    for error in errors:
        original = error.original_error
        if isinstance(original, AppError | ValidationError) or _client_error(error):
            continue
        if original is not None and db.as_app_error(original) is not None:
            log.warning("GraphQL database failure at %s: %s", error.path, type(original).__name__)
            continue
        log.error("unexpected GraphQL error at %s", error.path, exc_info=original or error)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    return error if message == error.message else _with(error, message, dict(error.extensions or {}))


def map_errors(errors: list[GraphQLError] | None, *, suggestions: bool = True) -> list[GraphQLError] | None:
    """Every error of a result as the client sees it (applied once, where the HTTP response is built);
    without `suggestions` (introspection off) "Did you mean ...?" hints, which reveal the schema, are cut."""
    if not errors:
        return errors
    mapped = [to_client(e) for e in errors]
    return mapped if suggestions else [_without_suggestion(e) for e in mapped]
