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
from app.errors import AppError, Invalid
from app.models.common import echo

log = logging.getLogger("chm.graphql")
M = TypeVar("M", bound=BaseModel)
MASKED = "an unexpected error occurred; it has been logged"


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """Pydantic errors as the REST API reports them (`loc` starts with `body`)."""
    out = []
    for err in exc.errors():
        item: dict[str, Any] = {
            "loc": [*prefix, *err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        if err.get("type") != "missing" and (value := echo(err.get("input"))) is not None:
            item["input"] = value
        out.append(item)
    return out


def invalid(exc: ValidationError) -> Invalid:
    """A pydantic ValidationError as the same INVALID error REST answers."""
    errors = field_errors(exc)
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return Invalid(detail or "invalid input", errors=errors)


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
        if original.errors:
            extensions["errors"] = original.errors
        return _with(error, original.detail, extensions)
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
