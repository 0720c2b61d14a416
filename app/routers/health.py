"""Liveness and readiness probes."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from app import db, metrics
from app.services import health as health_service

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz() -> Response:
    """Database reachable and migrations at head (503 otherwise)."""
    try:
        async with db.read_connection() as conn:
            result = await health_service.readiness(conn)
    except Exception as exc:  # the database is unreachable
        result = {
            "ok": False,
            "checks": {"database": f"error: {type(exc).__name__}", "migrations": "unknown"},
        }
    return Response(orjson.dumps(result), status_code=200 if result["ok"] else 503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Request counts and latencies, search sync backlog and lag."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
