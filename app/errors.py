"""Domain errors raised by services; adapters translate them (REST: problem+json, GraphQL: extensions.code)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Loc = Sequence[str | int]


def field_error(loc: Loc, msg: str, type_: str = "value_error", **extra: Any) -> dict[str, Any]:
    """One field error as every door reports it: `loc`, `msg`, `type` (and any extra keys)."""
    return {"loc": list(loc), "msg": msg, "type": type_, **extra}


def field_errors(errors: Iterable[Mapping[str, Any]], prefix: Loc = ()) -> list[dict[str, Any]]:
    """Pydantic errors (`ValidationError.errors()`, FastAPI's `RequestValidationError.errors()`) as field
    errors, `loc` prefixed; the offending input is echoed when it is a scalar. The one shaping function for
    REST problems, GraphQL errors and bulk results."""
    from app.models.common import echo  # the edge rules decide what may be quoted back

    out = []
    for err in errors:
        item = field_error([*prefix, *err.get("loc", ())], err.get("msg", ""), err.get("type", ""))
        if err.get("type") != "missing" and (value := echo(err.get("input"))) is not None:
            item["input"] = value
        out.append(item)
    return out


def describe(errors: Iterable[Mapping[str, Any]], limit: int | None = 5) -> str:
    """A one-line `detail` naming the first `limit` field errors ("body.title: Field required; ...")."""
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors]
    return "; ".join(parts[:limit] if limit is not None else parts)


class AppError(Exception):
    """Base of every error a client is allowed to see."""

    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class Invalid(AppError):
    """The input is well-formed but wrong; `errors[]` says where."""

    status = 422
    code = "INVALID"
    title = "Invalid input"

    @classmethod
    def field(cls, loc: Loc, msg: str, **extra: Any) -> Invalid:
        """An error about one field, with its location."""
        return cls(msg, errors=[field_error(loc, msg)], **extra)

    @classmethod
    def from_pydantic(cls, errors: Iterable[Mapping[str, Any]], prefix: Loc = ("body",)) -> Invalid:
        """Pydantic errors as one INVALID error with field locations."""
        shaped = field_errors(errors, prefix)
        return cls(describe(shaped) or "invalid input", errors=shaped)


class BadRequest(AppError):
    """The request cannot be read as asked: a malformed cursor, filter value or identifier."""

    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"

    @classmethod
    def param(cls, name: str, msg: str, detail: str | None = None) -> BadRequest:
        """A query (or GraphQL argument) parameter `name` is wrong: `msg` says how; `detail` defaults to it."""
        return cls(detail or f"{name}: {msg}", errors=[field_error(("query", name), msg)])

    @classmethod
    def choice(cls, name: str, value: object, allowed: Iterable[str]) -> BadRequest:
        """`value` is not one of the `allowed` values of parameter `name`."""
        return cls.param(name, f"must be one of {', '.join(allowed)}", f"unknown {name} '{value}'")


class Unauthenticated(AppError):
    """No usable bearer token: missing where one is required, malformed, expired or revoked."""

    status = 401
    code = "UNAUTHENTICATED"
    title = "Authentication required"


class Forbidden(AppError):
    """The token is valid but may not do this: a missing scope, or another Party's data."""

    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class NotFound(AppError):
    """Nothing by that identifier is visible to the caller (anonymous callers see published content only)."""

    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(AppError):
    """The resource's current state does not allow this, e.g. publishing with nothing to publish or a duplicate."""

    status = 409
    code = "CONFLICT"
    title = "Conflict"


class PreconditionFailed(AppError):
    """`If-Match` names a representation that is no longer current: GET it again, re-apply, retry."""

    status = 412
    code = "PRECONDITION_FAILED"
    title = "Precondition failed"


class TooLarge(AppError):
    """The request body, or the number of items in a batch, is over the limit: split it."""

    status = 413
    code = "TOO_LARGE"
    title = "Payload too large"


class RateLimited(AppError):
    """Too many requests from this caller: wait `Retry-After` seconds."""

    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"


class UnknownParameter(BadRequest):
    """A query parameter the operation does not take: a typo must never silently widen a query."""

    code = "UNKNOWN_PARAMETER"
    title = "Unknown query parameter"


class UnsupportedMediaType(AppError):
    """The request body is not JSON; send `Content-Type: application/json`."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"


class Unavailable(AppError):
    """A part the request needs (the database) is down or too slow: retry later."""

    status = 503
    code = "UNAVAILABLE"
    title = "Service unavailable"
