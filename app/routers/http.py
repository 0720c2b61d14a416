"""Response helpers shared by the REST routers: lists with Link headers, ETags and 304s."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from app.services.etags import etag_of, matches, render

JSON = "application/json"


def single(request: Request, model: type[BaseModel], data: Any, *, status_code: int = 200) -> Response:
    """One resource with its ETag; `If-None-Match` with the current ETag answers 304."""
    body = render(model, data)
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if status_code == 200 and matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def listing(
    request: Request, model: type[BaseModel], items: list[Any], next_cursor: str | None, *, trusted: bool = False
) -> Response:
    """A page `{"items": [...], "next_cursor": ...}` with a `Link: <...>; rel="next"` header."""
    body = render(model, {"items": items, "next_cursor": next_cursor}, trusted=trusted)
    headers = {}
    if next_cursor:
        url = request.url.include_query_params(cursor=next_cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    return Response(body, media_type=JSON, headers=headers)
