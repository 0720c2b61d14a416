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
    status = 422
    code = "INVALID"
    title = "Invalid input"

    @classmethod
    def field(cls, loc: list[str | int] | tuple[str | int, ...], msg: str, **extra: Any) -> Invalid:
        """An error about one field, with its location."""
        return cls(msg, errors=[{"loc": list(loc), "msg": msg, "type": "value_error"}], **extra)


class BadRequest(AppError):
    status = 400
    code = "BAD_REQUEST"
    title = "Bad request"


class Unauthenticated(AppError):
    status = 401
    code = "UNAUTHENTICATED"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "FORBIDDEN"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class PreconditionFailed(AppError):
    status = 412
    code = "PRECONDITION_FAILED"
    title = "Precondition failed"


class TooLarge(AppError):
    status = 413
    code = "TOO_LARGE"
    title = "Payload too large"


class RateLimited(AppError):
    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"


class Unavailable(AppError):
    """A part the request needs (the database) is down or too slow: retry later."""

    status = 503
    code = "UNAVAILABLE"
    title = "Service unavailable"
