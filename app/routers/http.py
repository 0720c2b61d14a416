"""HTTP helpers shared by the REST routers: strict query strings, lists with Link headers, ETags, 304s and
the one Cache-Control policy (reused by any response cache)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.errors import UnknownParameter, UnsupportedMediaType
from app.services.etags import etag_of, matches, render, weak_etag_of
from app.settings import get_settings

JSON = "application/json"
_TOKEN_PARAMS = ("access_token", "token")
_allowed_cache: dict[int, frozenset[str]] = {}


def route_params(dependant: Dependant, kind: str) -> Iterator[Any]:
    """The parameters of one kind (`query_params`, `path_params`, `header_params`) of a route and its
    dependencies."""
    yield from getattr(dependant, kind)
    for dep in dependant.dependencies:
        yield from route_params(dep, kind)


def _allowed(route: APIRoute) -> frozenset[str]:
    allowed = _allowed_cache.get(id(route))
    if allowed is None:
        allowed = _allowed_cache[id(route)] = frozenset(p.alias for p in route_params(route.dependant, "query_params"))
    return allowed


async def strict_request(request: Request) -> None:
    """Every REST operation: unknown query parameters are a 400 naming them; a body that is not JSON is a 415."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    if request.scope.get("query_string"):
        allowed = _allowed(route)
        unknown = list(dict.fromkeys(k for k in request.query_params if k not in allowed))
        if unknown:
            hint = ("; tokens go in the 'Authorization: Bearer <token>' header, never in the query string"
                    if any(k in _TOKEN_PARAMS for k in unknown) else "")  # fmt: skip
            takes = ", ".join(sorted(allowed)) or "none"
            raise UnknownParameter(
                f"unknown query parameter(s): {', '.join(unknown)} (this operation takes: {takes}){hint}",
                errors=[{"loc": ["query", k], "msg": "unknown query parameter", "type": "unknown_parameter"}
                        for k in unknown],
            )  # fmt: skip
    if route.body_field is not None:
        ctype = request.headers.get("content-type")
        if ctype is not None:
            media = ctype.split(";", 1)[0].strip().lower()
            if media != JSON and not media.endswith("+json"):
                raise UnsupportedMediaType(f"the body must be application/json, not '{media}'")


def cache_control(authenticated: bool) -> str:
    """The Cache-Control of a successful read: shared caches may keep anonymous (published) reads a short
    while; anything read with a token is private and never stored."""
    if authenticated:
        return "private, no-store"
    return f"public, max-age={get_settings().cache_max_age}"


def single(request: Request, model: type[BaseModel], data: Any, *, status_code: int = 200) -> Response:
    """One resource with its (strong) ETag; `If-None-Match` with the current ETag answers 304."""
    body = render(model, data)
    etag = etag_of(body)
    headers = {"ETag": etag}
    if status_code == 200 and matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def listing(
    request: Request, model: type[BaseModel], items: list[Any], next_cursor: str | None, *, trusted: bool = False
) -> Response:
    """A page `{"items": [...], "next_cursor": ...}` with a `Link: <...>; rel="next"` header and a weak ETag
    (`If-None-Match` answers 304)."""
    body = render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted)
    etag = weak_etag_of(body)
    headers = {"ETag": etag}
    if next_cursor:
        url = request.url.include_query_params(cursor=next_cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    if matches(request.headers.get("if-none-match"), etag.removeprefix("W/")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)
