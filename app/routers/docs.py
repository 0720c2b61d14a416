"""Documentation that works offline: Swagger UI at /docs and ReDoc at /redoc from assets installed with the
`fastapi-offline` package (no CDN), and the /graphql IDE page."""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.openapi import public_origin

STATIC = "/static/docs"
router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """Swagger UI and ReDoc bundles as shipped by fastapi-offline."""
    return Path(str(files("fastapi_offline") / "static"))


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI; "Try it out" calls the document's `servers` (this origin) and sends the Authorize token."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json", title="chm-api — Swagger UI",
        swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js", swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC}/favicon.png",
        swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True, "filter": True},
    )  # fmt: skip


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, with no web fonts from outside."""
    root = _root(request)
    return get_redoc_html(openapi_url=f"{root}/openapi.json", title="chm-api — ReDoc",
                          redoc_js_url=f"{root}{STATIC}/redoc.standalone.js",
                          redoc_favicon_url=f"{root}{STATIC}/favicon.png", with_google_fonts=False)  # fmt: skip


GRAPHQL_EXAMPLE = '{"query": "{ records(first: 2) { edges { node { uid title(lang: EN) } } } }"}'


def graphql_ide_page(template: str, request: Request) -> str:
    """Strawberry's GraphiQL page with a plain notice in place of "Loading…": GraphiQL's scripts come from a
    public CDN (no maintained PyPI package ships them), so offline the notice and a curl example stay."""
    endpoint = public_origin(request) + "/graphql"
    curl = f"curl -s -X POST {endpoint} \\\n  -H 'Content-Type: application/json' \\\n  -d '{GRAPHQL_EXAMPLE}'"
    notice = (
        '<div id="chm-offline-notice" style="font-family:sans-serif;max-width:50rem;margin:2rem auto;line-height:1.5">'
        "<h1>GraphQL endpoint</h1>"
        "<p><strong>The GraphiQL IDE needs internet access</strong>: its scripts load from a public CDN. "
        "If this text stays, the IDE could not load; the endpoint itself works offline. "
        "POST a query as JSON, with <code>Authorization: Bearer &lt;token&gt;</code> to see your own drafts:</p>"
        f"<pre style='background:#f4f4f4;padding:1rem;overflow:auto'>{html.escape(curl)}</pre>"
        '<p>The REST API and its offline documentation: <a href="/docs">Swagger UI</a>, '
        '<a href="/redoc">ReDoc</a>, <a href="/">home</a>.</p></div>'
    )
    page = template.replace("Loading...", notice, 1)
    return page if page != template else template.replace("<body>", "<body>" + notice, 1)


def install(app: FastAPI) -> None:
    """Mount the assets and the pages."""
    app.mount(STATIC, StaticFiles(directory=assets_dir()), name="docs-assets")
    app.include_router(router)
