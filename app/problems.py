"""RFC 9457 problem+json for every error the REST API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import db
from app.errors import AppError, describe, field_errors
from app.models.common import encodable

log = logging.getLogger("chm.errors")
PROBLEM = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None, type_: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:  # fmt: skip
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    try:
        raw = orjson.dumps(body, default=str)
    except TypeError:  # an unpaired surrogate or a >64-bit integer somewhere in what the client sent
        raw = orjson.dumps(encodable(body), default=str)
    return Response(raw, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="chm-api"'}
        extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
        return problem(exc.status, exc.detail, title=exc.title, type_=f"/problems/{exc.code.lower()}",
                       headers=headers, errors=exc.errors or None, code=exc.code, **extra)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc.errors())
        return problem(422, describe(errors) or "invalid request", title="Invalid input", type_="/problems/invalid",
                       errors=errors, code="INVALID")  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route for {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    async def database_error(request: Request, exc: Exception) -> Response:
        mapped = db.as_app_error(exc)
        if mapped is None:
            return await unexpected(request, exc)
        if mapped.status >= 500:
            log.warning("%s on %s %s: %s", mapped.code, request.method, request.url.path, exc.__class__.__name__)
        return await app_error(request, mapped)

    # Handled here (not by the catch-all), so the response goes out normally: the connection stays usable
    # and metrics see the real status.
    for cls in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, UnicodeError):
        app.add_exception_handler(cls, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged",
                       request_id=request.headers.get("x-request-id"))  # fmt: skip
