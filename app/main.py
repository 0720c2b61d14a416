"""The ASGI application: create_app() wires routers, GraphQL, error handlers and the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette_compress import CompressMiddleware, add_compress_type

from app import __version__, db, openapi, problems
from app.cache import ResponseCache
from app.graphql.schema import graphql_router
from app.leader import INPROCESS_WORKERS_LOCK, Leadership
from app.middleware import ApiMiddleware, EdgeLimits, RateLimitMiddleware
from app.ratelimit import parse_networks
from app.routers import (
    changes,
    cooperation,
    decisions,
    docs,
    dumps,
    feeds,
    health,
    home,
    http,
    nodes,
    oai,
    opportunities,
    records,
    reference,
    search,
    tokens,
    webhooks,
    wellknown,
)
from app.settings import get_settings

# Compressed like JSON; streamed types (NDJSON dumps, event streams) are deliberately not registered as
# streaming, and NDJSON not at all: a body flushed line by line must reach the client as it is written.
add_compress_type("application/problem+json")
add_compress_type("application/graphql-response+json")
COMPRESS_MIN_BYTES = 1024
# Cheap levels: on a 50-record page (55 KB) brotli 2 takes ~0.4 ms for 5x, gzip 1 ~0.6 ms for 4.3x; the
# library defaults (4/4) cost about twice that for 5-10 % smaller bodies (bench/http_overhead.py).
BROTLI_QUALITY = 2
GZIP_LEVEL = 1


async def _start_workers() -> list[Any]:
    from app.exchange import webhooks as webhook_delivery
    from app.search.worker import start_default_worker

    return [await start_default_worker(), await webhook_delivery.start_default_worker()]


async def _stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        await worker.stop()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = db.init_engine()
    url = engine.url.render_as_string(hide_password=False)
    cache: ResponseCache | None = app.state.response_cache
    if cache is not None:
        cache.listen_url = url  # NOTIFY comes from the primary, never from a read replica
        await cache.start()
    leadership = None
    if get_settings().run_inprocess_worker:  # development: search and webhooks work without `chm worker`
        # One process of `chm serve --workers N` runs them (whichever holds the advisory lock).
        leadership = Leadership(url, INPROCESS_WORKERS_LOCK, _start_workers, _stop_workers)
        await leadership.start()
    # Everything alive now (modules, the app, schemas: ~10^5 objects) lives as long as the process; frozen, the
    # collector stops re-walking it on every full collection. A dump streams ~10^4 short-lived containers a
    # second and without this the collector took a third of the process's time (py-spy, bench/harvest.py).
    gc.freeze()
    try:
        yield
    finally:
        if leadership is not None:
            await leadership.stop()
        if cache is not None:
            await cache.stop()
        await db.dispose_engine()


def create_app() -> FastAPI:
    """Build the application."""
    settings = get_settings()
    app = FastAPI(title="chm-api", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, generate_unique_id_function=openapi.operation_id,
                  dependencies=[Depends(http.strict_request)])  # fmt: skip
    problems.install(app)
    openapi.install(app)
    docs.install(app)
    for router in (
        home.router,
        health.router,
        reference.router,
        records.router,
        tokens.router,
        nodes.router,
        decisions.router,
        cooperation.router,
        opportunities.router,
        changes.router,
        search.router,
        webhooks.router,
        wellknown.router,
        oai.router,
        feeds.router,
        dumps.router,
    ):
        app.include_router(router)
    # The GraphQL routes join the app's own (not include_router): FastAPI re-derives an included router's nested
    # routes on every request that reaches them, a tenth of a GraphQL request's time. They go first: routes are
    # matched in order, and behind sixteen included routers a GraphQL request spent ~0.5 ms finding its route.
    graphql = graphql_router(settings)
    for route in graphql.routes:
        route.include_in_schema = False  # type: ignore[attr-defined]
    app.router.routes[0:0] = graphql.routes
    app.add_middleware(CompressMiddleware, minimum_size=COMPRESS_MIN_BYTES, zstd=False, brotli_quality=BROTLI_QUALITY,
                       gzip_level=GZIP_LEVEL)  # fmt: skip
    # Everything else at the edge is one layer (app/middleware.py): each wrapping layer costs every request.
    exposed = ["ETag", "Link", "X-Request-ID", "Retry-After", "X-Change-Seq"]
    cors = CORSMiddleware(None, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"],  # type: ignore[arg-type]
                          expose_headers=exposed)  # fmt: skip
    limiter = None
    if settings.rate_limit_per_minute > 0:
        limiter = RateLimitMiddleware(None, per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst,
                                      trusted_proxies=parse_networks(settings.trusted_proxies))  # fmt: skip
    edge = EdgeLimits(max_body_bytes=settings.max_body_bytes, max_bulk_bytes=settings.max_bulk_body_bytes,
                      max_header_bytes=settings.max_header_bytes)  # fmt: skip
    cache = None
    if settings.response_cache:  # listens (and so caches) once the lifespan has started it
        cache = ResponseCache(max_bytes=settings.response_cache_bytes, max_age=settings.response_cache_max_age)
    app.state.response_cache = cache
    app.add_middleware(ApiMiddleware, edge=edge, limiter=limiter, cors=cors, cache=cache)
    return app


app = create_app()
