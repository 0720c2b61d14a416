"""RFC 9457 problem+json for every error the REST API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import AppError, describe, field_errors

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
    return Response(orjson.dumps(body, default=str), status_code=status, media_type=PROBLEM, headers=headers)


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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an unexpected error occurred; it has been logged",
                       request_id=request.headers.get("x-request-id"))  # fmt: skip
