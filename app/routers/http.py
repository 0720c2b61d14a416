"""Response helpers shared by the REST routers: lists with Link headers, ETags and 304s, and content
negotiation (JSON or JSON-LD by `Accept`), written once for every resource."""

from __future__ import annotations

import typing
from typing import Any

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from app.exchange import jsonld
from app.services.etags import etag_of, matches, render

JSON = "application/json"
LD_JSON = jsonld.MEDIA_TYPE


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
    """One resource with its ETag; `If-None-Match` with the current ETag answers 304. JSON-LD on
    `Accept: application/ld+json` for the kinds that have a schema.org form."""
    media = JSON
    serializer = jsonld.SERIALIZERS.get(model)
    if serializer is not None and negotiate(request, (JSON, LD_JSON)) == LD_JSON:
        media = LD_JSON
        body = orjson.dumps(serializer(site_url(request), _plain(model, data)))
    else:
        body = render(model, data)
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
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
    """A page `{"items": [...], "next_cursor": ...}` with a `Link: <...>; rel="next"` header; a schema:ItemList
    on `Accept: application/ld+json` for the kinds that have a schema.org form."""
    headers = {}
    next_url = str(request.url.include_query_params(cursor=next_cursor)) if next_cursor else None
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    item_model = _ld_item_model(model)
    if item_model is None:
        return Response(render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted), media_type=JSON,
                        headers=headers)  # fmt: skip
    headers["Vary"] = "Accept"
    if negotiate(request, (JSON, LD_JSON)) == LD_JSON:
        site, serializer = site_url(request), jsonld.SERIALIZERS[item_model]
        page = orjson.loads(render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted))
        doc = jsonld.item_list(site, str(request.url), [serializer(site, i) for i in page["items"]], next_url)
        return Response(orjson.dumps(doc), media_type=LD_JSON, headers=headers)
    body = render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted)
    return Response(body, media_type=JSON, headers=headers)
