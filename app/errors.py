"""Domain errors raised by services; adapters translate them (REST: problem+json, GraphQL: extensions.code)."""

from __future__ import annotations

from typing import Any


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
    def field(cls, loc: list[str | int] | tuple[str | int, ...], msg: str, **extra: Any) -> Invalid:
        """An error about one field, with its location."""
        return cls(msg, errors=[{"loc": list(loc), "msg": msg, "type": "value_error"}], **extra)


class BadRequest(AppError):
    """The request cannot be read as asked: a malformed cursor, filter value or identifier."""

    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"


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
