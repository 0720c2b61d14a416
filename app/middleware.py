"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, access logs, metrics, edge checks,
rate limits."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from app import metrics
from app.ratelimit import CallerKey, SharedQuota

log = logging.getLogger("chm.access")
log_errors = logging.getLogger("chm.errors")


class RequestIdMiddleware:
    """Propagate or mint `X-Request-ID`, count and time each request, log it as one structured line."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value[:128]
                break
        if request_id is None:
            request_id = uuid.uuid4().hex.encode()
            scope["headers"] = [*scope.get("headers", ()), (b"x-request-id", request_id)]
        start = time.perf_counter()
        status = 0

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The last net: answer a 500 ourselves rather than let the server drop the keep-alive connection,
            # and count it as the 500 it is.
            if status:
                raise  # the response had started: nothing sensible can follow it
            log_errors.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_problem(send_with_id, 500, "Internal Server Error",
                               "an unexpected error occurred; it has been logged", "INTERNAL",
                               request_id=request_id.decode(errors="replace"))  # fmt: skip
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], route, str(status)).inc()
            metrics.LATENCY.labels(scope["method"], route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"request_id": request_id.decode(errors="replace"),
                                           "method": scope["method"], "path": scope["path"], "status": status,
                                           "ms": round(elapsed * 1000, 2)})  # fmt: skip


class RateLimitMiddleware:
    """Rate limits per caller, shared by every API process through PostgreSQL (see app.ratelimit): 429 with
    Retry-After when spent; `RateLimit-Policy` and `RateLimit` headers on every response. Only `/healthz` (no
    I/O) is exempt; the probes that query something (`/readyz`, `/metrics`) are limited like any caller."""

    EXEMPT = frozenset({"/healthz"})

    def __init__(self, app: Any, *, per_minute: int, burst: int | None = None,
                 trusted_proxies: tuple[Any, ...] = ()) -> None:  # fmt: skip
        self.app = app
        capacity = burst or max(per_minute // 6, 10)
        self.quota = SharedQuota(per_minute=per_minute, burst=capacity)
        self.caller = CallerKey(trusted_proxies)
        window = max(1, round(capacity * 60 / per_minute))
        self.policy = f'"default";q={capacity};w={window}'.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        decision = await self.quota.take(self.caller(scope))
        headers = [(b"ratelimit-policy", self.policy),
                   (b"ratelimit", f'"default";r={decision.remaining};t={decision.reset}'.encode())]  # fmt: skip
        if not decision.allowed:
            metrics.RATE_LIMITED.inc()
            retry = decision.retry_after
            await send_problem(send, 429, "Too many requests", f"rate limit exceeded; retry in {retry} s",
                               "RATE_LIMITED", [(b"retry-after", str(retry).encode()), *headers])  # fmt: skip
            return

        async def send_with_limits(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_limits)


async def send_problem(send: Any, status: int, title: str, detail: str, code: str,
                       headers: list[tuple[bytes, bytes]] = (), **extra: Any) -> None:  # type: ignore[assignment]  # fmt: skip
    """Answer with a problem+json straight from middleware (the application never sees the request)."""
    body = orjson.dumps({"type": f"/problems/{code.lower()}", "title": title, "status": status, "detail": detail,
                         "code": code, **extra})  # fmt: skip
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()), *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _nul_location(scope: dict[str, Any]) -> list[str] | None:
    """Where a percent-encoded NUL byte sits in the URL (path, or the query parameter carrying it)."""
    if b"%00" in scope.get("raw_path", b"") or "\x00" in scope["path"]:
        return ["path"]
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query:
        return None
    for pair in query.split(b"&"):
        if b"%00" in pair:
            name = pair.partition(b"=")[0]
            return ["query", unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace").replace("\x00", "")]
    return ["query"]


class EdgeMiddleware:
    """Refuse what no route can take, before any parsing:

    - a NUL byte anywhere in the URL (PostgreSQL text cannot hold one, so every parameter would have to check);
    - request headers above `max_header_bytes` in total (431);
    - a body above its route family's cap (413): `max_body_bytes`, or `max_bulk_bytes` for `/bulk` endpoints
      and `/graphql`. A declared Content-Length is refused before reading; a chunked body is counted while it
      is read and cut off at the cap.
    """

    def __init__(self, app: Any, *, max_body_bytes: int = 1 << 20, max_bulk_bytes: int = 10 << 20,
                 max_header_bytes: int = 16 << 10) -> None:  # fmt: skip
        self.app = app
        self.max_body = max_body_bytes
        self.max_bulk = max_bulk_bytes
        self.max_headers = max_header_bytes

    def cap(self, path: str) -> int:
        """The body cap of the route family `path` belongs to."""
        return self.max_bulk if path.endswith("/bulk") or path == "/graphql" else self.max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b""):
            loc = _nul_location(scope) or ["query"]
            msg = "must not contain NUL bytes (\\u0000)"
            await send_problem(send, 422, "Invalid input", f"{'.'.join(loc)}: {msg}", "INVALID",
                               errors=[{"loc": loc, "msg": msg, "type": "value_error"}])  # fmt: skip
            return
        size = 0
        declared = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                declared = value
        if size > self.max_headers:
            await send_problem(send, 431, "Request header fields too large",
                               f"request headers total {size} bytes; the limit is {self.max_headers}",
                               "HEADERS_TOO_LARGE", limit=self.max_headers)  # fmt: skip
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and declared is None:
            await self.app(scope, receive, send)  # the hot read path pays nothing more
            return
        cap = self.cap(scope["path"])
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await send_problem(send, 413, "Payload too large",
                               f"the request body is larger than {cap} bytes, the limit for {scope['path']}",
                               "TOO_LARGE", limit=cap)  # fmt: skip
            return
        await self.app(scope, _counting(receive, cap, scope["path"]), send)


def _counting(receive: Any, cap: int, path: str) -> Any:
    seen = 0

    async def counted() -> dict[str, Any]:
        nonlocal seen
        message: dict[str, Any] = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                # Raised inside the application's body read: FastAPI lets an HTTPException through as it is,
                # so the client gets the same 413 problem.
                from starlette.exceptions import HTTPException

                raise HTTPException(413, f"the request body is larger than {cap} bytes, the limit for {path}")
        return message

    return counted
