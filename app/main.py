"""The ASGI application: create_app() wires routers, GraphQL, error handlers and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__, db, openapi, problems
from app.graphql.schema import graphql_router
from app.middleware import EdgeMiddleware, RateLimitMiddleware, RequestIdMiddleware
from app.ratelimit import parse_networks
from app.routers import (
    changes,
    cooperation,
    decisions,
    dumps,
    feeds,
    health,
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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db.init_engine()
    workers: list[Any] = []
    if get_settings().run_inprocess_worker:  # development: search and webhooks work without `chm worker`
        from app.exchange import webhooks as webhook_delivery
        from app.search.worker import start_default_worker

        workers.append(await start_default_worker())
        workers.append(await webhook_delivery.start_default_worker())
    try:
        yield
    finally:
        for worker in workers:
            await worker.stop()
        await db.dispose_engine()


def create_app() -> FastAPI:
    """Build the application."""
    settings = get_settings()
    app = FastAPI(title="chm-api", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url="/redoc")
    problems.install(app)
    openapi.install(app)
    for router in (
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
    app.include_router(graphql_router(settings))
    exposed = ["ETag", "Link", "X-Request-ID", "Retry-After", "X-Change-Seq"]
    app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=exposed)  # fmt: skip
    if settings.rate_limit_per_minute > 0:
        app.add_middleware(
            RateLimitMiddleware,
            per_minute=settings.rate_limit_per_minute,
            burst=settings.rate_limit_burst,
            trusted_proxies=parse_networks(settings.trusted_proxies),
        )
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_bulk_bytes=settings.max_bulk_body_bytes,
                       max_header_bytes=settings.max_header_bytes)  # fmt: skip
    app.add_middleware(RequestIdMiddleware)
    return app


app = create_app()
