"""The landing page `/`, the JSON index `/api/v1`, and the pages that problem `type` URIs point to."""

from __future__ import annotations

import html

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from app import __version__
from app.errors import NotFound
from app.openapi import public_origin
from app.problems import catalog, type_uri

router = APIRouter()

RESOURCES: dict[str, str] = {
    "parties": "/api/v1/parties",
    "records": "/api/v1/records",
    "nodes": "/api/v1/nodes",
    "decisions": "/api/v1/decisions",
    "cooperation_requests": "/api/v1/cooperation-requests",
    "vocabularies": "/api/v1/vocabularies",
    "search": "/api/v1/search",
    "changes": "/api/v1/changes",
    "tokens": "/api/v1/tokens",
    "whoami": "/api/v1/auth/whoami",
}
DOCS: dict[str, str] = {
    "openapi": "/openapi.json",
    "swagger_ui": "/docs",
    "redoc": "/redoc",
    "graphql": "/graphql",
    "problems": "/problems",
    "health": "/healthz",
    "readiness": "/readyz",
    "metrics": "/metrics",
}


class ApiIndex(BaseModel):
    """Where everything is, as absolute URLs."""

    name: str = Field(examples=["chm-api"])
    version: str = Field(examples=["0.1.0"])
    resources: dict[str, str] = Field(description="Resource collections, by name")
    docs: dict[str, str] = Field(description="Documentation, GraphQL, health and metrics endpoints")


@router.get("/api/v1", response_model=ApiIndex, tags=["meta"], summary="API index")
async def get_index(request: Request) -> Response:
    """Links to every resource collection and to the documentation."""
    origin = public_origin(request)
    body = {"name": "chm-api", "version": __version__, "resources": {k: origin + v for k, v in RESOURCES.items()},
            "docs": {k: origin + v for k, v in DOCS.items()}}  # fmt: skip
    return Response(orjson.dumps(body), media_type="application/json")


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
          "code{background:#f2f2f2;padding:0 .25em}table{border-collapse:collapse}"
          "td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}")  # fmt: skip


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
                        f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
                        f"<style>{_STYLE}</style></head><body>{body}</body></html>")  # fmt: skip


@router.get("/", include_in_schema=False)
async def home(request: Request) -> HTMLResponse:
    """What this is and where to go."""
    origin = html.escape(public_origin(request))
    rows = "".join(f'<li><a href="{v}"><code>{v}</code></a></li>' for v in RESOURCES.values())
    return _page(
        "chm-api",
        f"""
<h1>chm-api <small>{html.escape(__version__)}</small></h1>
<p>The API of a biodiversity <strong>Clearing-House Mechanism</strong> (Convention on Biological Diversity):
CHM records, national nodes, COP decisions and scientific and technical cooperation requests, published by the
Parties with their own tokens, read by anyone.</p>
<h2>Documentation (works offline)</h2>
<ul><li><a href="/docs">Swagger UI</a>: try every operation; <em>Authorize</em> with a bearer token to write.</li>
<li><a href="/redoc">ReDoc</a>: the reference.</li>
<li><a href="/openapi.json"><code>/openapi.json</code></a>: the OpenAPI document, for client generators.</li>
<li><a href="/problems">Problem types</a>: what each error means.</li></ul>
<h2>Endpoints</h2>
<ul><li><a href="/api/v1"><code>/api/v1</code></a>: the JSON index.</li>{rows}
<li><a href="/graphql"><code>/graphql</code></a>: GraphQL (the GraphiQL IDE needs internet; the endpoint does not).</li>
</ul>
<h2>Harvesting</h2>
<p>Follow <a href="/api/v1/changes"><code>/api/v1/changes?since=0</code></a> with <code>since=next_since</code>;
lists page with <code>cursor</code> and the <code>Link: rel="next"</code> header, with no cap on how far.</p>
<h2>Health</h2>
<p><a href="/healthz"><code>/healthz</code></a> (liveness), <a href="/readyz"><code>/readyz</code></a>
(database and migrations), <a href="/metrics"><code>/metrics</code></a> (Prometheus).</p>
<p>Quick start: <code>curl -s {origin}/api/v1/records?limit=2</code></p>
""",
    )


@router.get("/problems", include_in_schema=False)
async def problems_index() -> HTMLResponse:
    """Every problem type, with its status."""
    rows = "".join(f'<tr><td>{p["status"]}</td><td><a href="{type_uri(code)}"><code>{code}</code></a></td>'
                   f"<td>{html.escape(p['title'])}</td></tr>" for code, p in catalog().items())  # fmt: skip
    return _page("chm-api problem types", "<h1>Problem types</h1><p>Every error is an RFC 9457 "
                 "<code>application/problem+json</code> object whose <code>type</code> links here; "
                 "<code>errors[]</code> locates each fault in the input (<code>loc</code>, <code>msg</code>, "
                 "<code>type</code>).</p><table><tr><th>status</th><th>code</th><th>title</th></tr>"
                 f"{rows}</table>")  # fmt: skip


@router.get("/problems/{name}", include_in_schema=False)
async def problem_page(name: str) -> HTMLResponse:
    """One problem type explained."""
    code = name.upper()
    entry = catalog().get(code)
    if entry is None:
        raise NotFound(f"no problem type {name!r}; see /problems")
    return _page(f"{code} — chm-api", f"<h1>{html.escape(entry['title'])}</h1><p>HTTP status <strong>"
                 f"{entry['status']}</strong>, <code>code: {code}</code></p><p>{html.escape(entry['about'])}</p>"
                 '<p>The body is an RFC 9457 problem: <code>type</code> (this page), <code>title</code>, '
                 "<code>status</code>, <code>detail</code> (what happened this time), <code>code</code>, and "
                 '<code>errors[]</code> with field locations where they apply.</p><p><a href="/problems">'
                 "All problem types</a></p>")  # fmt: skip
