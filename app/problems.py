"""RFC 9457 problem+json for every error the REST API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import db
from app.errors import AppError, describe, field_errors
from app.models.common import encodable

log = logging.getLogger("chm.errors")
PROBLEM = "application/problem+json"


# Problems raised outside the services (routing, the rate limiter, the catch-all), besides every AppError.
EXTRA_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "NO_ROUTE": (404, "Not found", "No endpoint has this path. The index at `/api/v1` lists the resources."),
    "METHOD_NOT_ALLOWED": (
        405,
        "Method not allowed",
        "The path exists but does not take this method; the `Allow` header lists those it takes.",
    ),
    "HEADERS_TOO_LARGE": (
        431,
        "Request header fields too large",
        "The request's headers (cookies, tokens, custom headers) add up to more than the limit.",
    ),
    "RATE_LIMITED": (429, "Too many requests", "Too many requests from this caller: wait `Retry-After` seconds."),
    "INTERNAL": (
        500,
        "Internal server error",
        "Something failed on our side and was logged; quote the `request_id` when you report it.",
    ),
}


def type_uri(code: str) -> str:
    """The `type` of a problem: a page (served by the API) that explains it."""
    return f"/problems/{code.lower()}"


def catalog() -> dict[str, dict[str, Any]]:
    """Every problem the API can answer, by code: status, title and what it means (AppError docstrings)."""
    out: dict[str, dict[str, Any]] = {}
    stack: list[type[AppError]] = [AppError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.code not in out or (cls.__doc__ and not out[cls.code]["about"]):
            about = (cls.__doc__ or "").strip() if cls is not AppError else ""
            out[cls.code] = {"status": cls.status, "title": cls.title, "about": about}
    for code, (status, title, about) in EXTRA_PROBLEMS.items():
        out[code] = {"status": status, "title": title, "about": about}
    return dict(sorted(out.items(), key=lambda kv: (kv[1]["status"], kv[0])))


def allowed_methods(request: Request) -> list[str]:
    """The methods some route serves on this path (HEAD wherever GET is), for a 405's `Allow`."""
    methods: set[str] = set()
    path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
    for route in iter_route_contexts(request.app.router.routes):
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    if "GET" in methods:
        methods.add("HEAD")
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: order.index(m) if m in order else len(order))


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
        raw = orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z)
    except TypeError:  # an unpaired surrogate or a >64-bit integer somewhere in what the client sent
        raw = orjson.dumps(encodable(body), default=str, option=orjson.OPT_UTC_Z)
    return Response(raw, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="chm-api"'}
        extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
        return problem(exc.status, exc.detail, title=exc.title, type_=type_uri(exc.code),
                       headers=headers, errors=exc.errors or None, code=exc.code, **extra)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc.errors())
        return problem(422, describe(errors) or "invalid request", title="Invalid input", type_=type_uri("INVALID"),
                       errors=errors, code="INVALID")  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(getattr(exc, "headers", None) or {})
        code = None
        if exc.status_code == 404 and detail == "Not Found":
            detail, code = f"no route for {request.url.path}", "NO_ROUTE"
        if exc.status_code == 405:
            detail, code = f"{request.method} is not allowed on {request.url.path}", "METHOD_NOT_ALLOWED"
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, detail, headers=headers or None, type_=type_uri(code) if code else None,
                       code=code)  # fmt: skip

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
        return problem(500, "an unexpected error occurred; it has been logged", type_=type_uri("INTERNAL"),
                       code="INTERNAL", request_id=request.headers.get("x-request-id"))  # fmt: skip
