"""HTTP helpers shared by the REST routers: strict query strings, lists with Link headers, ETags, 304s, the one
Cache-Control policy (reused by any response cache) and content negotiation (JSON or JSON-LD by `Accept`),
written once for every resource."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.errors import UnknownParameter, UnsupportedMediaType
from app.exchange import jsonld
from app.services.etags import etag_of, matches, render, weak_etag_of
from app.settings import get_settings

JSON = "application/json"
LD_JSON = jsonld.MEDIA_TYPE
_TOKEN_PARAMS = ("access_token", "token")
# Operations whose protocol defines its own answer to unknown arguments (OAI-PMH: `badArgument`, in XML).
OWN_ARGUMENTS = "x-own-arguments"
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
    if request.scope.get("query_string") and not (route.openapi_extra or {}).get(OWN_ARGUMENTS):
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


def _accept(header: str) -> list[tuple[str, float]]:
    out = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media:
            out.append((media.lower(), q))
    return out


def negotiate(request: Request, offered: tuple[str, ...]) -> str:
    """The offered media type the `Accept` header prefers (ties and no match: the first offered)."""
    header = request.headers.get("accept")
    if not header:
        return offered[0]
    ranges = _accept(header)
    best, best_q = offered[0], -1.0
    for media in offered:
        kind = media.split("/")[0] + "/*"
        # the most specific range that matches decides the quality (RFC 9110 §12.5.1)
        q = next((q for m, q in ranges if m == media), None)
        if q is None:
            q = next((q for m, q in ranges if m == kind), None)
        if q is None:
            q = next((q for m, q in ranges if m == "*/*"), 0.0)
        if q > best_q and q > 0:
            best, best_q = media, q
    return best


def _ld_item_model(model: type[BaseModel]) -> type[BaseModel] | None:
    field = model.model_fields.get("items")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args and args[0] in jsonld.SERIALIZERS else None


def site_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def single(request: Request, model: type[BaseModel], data: Any, *, status_code: int = 200) -> Response:
    """One resource with its (strong) ETag; `If-None-Match` with the current ETag answers 304. JSON-LD on
    `Accept: application/ld+json` for the kinds that have a schema.org form."""
    media = JSON
    serializer = jsonld.SERIALIZERS.get(model)
    if serializer is not None and negotiate(request, (JSON, LD_JSON)) == LD_JSON:
        media = LD_JSON
        body = orjson.dumps(serializer(site_url(request), _plain(model, data)))
    else:
        body = render(model, data)
    etag = etag_of(body)
    headers = {"ETag": etag}
    if serializer is not None:
        headers["Vary"] = "Accept"
    if status_code == 200 and matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=media, headers=headers)


def _plain(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """`data` as the public schema's JSON types (what the JSON representation says)."""
    return orjson.loads(render(model, data))


def listing(
    request: Request, model: type[BaseModel], items: list[Any], next_cursor: str | None, *, trusted: bool = False
) -> Response:
    """A page `{"items": [...], "next_cursor": ...}` with a `Link: <...>; rel="next"` header and a weak ETag
    (`If-None-Match` answers 304); a schema:ItemList on `Accept: application/ld+json` for the kinds that have a
    schema.org form."""
    body = render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted)
    next_url = str(request.url.include_query_params(cursor=next_cursor)) if next_cursor else None
    headers: dict[str, str] = {}
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    media = JSON
    item_model = _ld_item_model(model)
    if item_model is not None:
        headers["Vary"] = "Accept"
        if negotiate(request, (JSON, LD_JSON)) == LD_JSON:
            site, serializer = site_url(request), jsonld.SERIALIZERS[item_model]
            page = orjson.loads(body)
            doc = jsonld.item_list(site, str(request.url), [serializer(site, i) for i in page["items"]], next_url)
            body, media = orjson.dumps(doc), LD_JSON
    etag = weak_etag_of(body)
    headers["ETag"] = etag
    if matches(request.headers.get("if-none-match"), etag.removeprefix("W/")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media, headers=headers)
