"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request ids, access logs, metrics, edge checks,
rate limits, CORS, HEAD, Cache-Control and the response cache, all in one layer (`ApiMiddleware`)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.datastructures import Headers, MutableHeaders

from app import metrics
from app.cache import Entry, ResponseCache, cacheable_start
from app.ratelimit import CallerKey, SharedQuota
from app.routers.http import cache_control
from app.services.etags import matches

log = logging.getLogger("chm.access")
log_errors = logging.getLogger("chm.errors")


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

    async def admit(self, scope: dict[str, Any], send: Any) -> list[tuple[bytes, bytes]] | None:
        """Spend one request of the caller's quota: the RateLimit headers for the response, or None when the
        quota is spent (a 429 was sent)."""
        decision = await self.quota.take(self.caller(scope))
        headers = [(b"ratelimit-policy", self.policy),
                   (b"ratelimit", f'"default";r={decision.remaining};t={decision.reset}'.encode())]  # fmt: skip
        if not decision.allowed:
            metrics.RATE_LIMITED.inc()
            retry = decision.retry_after
            await send_problem(send, 429, "Too many requests", f"rate limit exceeded; retry in {retry} s",
                               "RATE_LIMITED", [(b"retry-after", str(retry).encode()), *headers])  # fmt: skip
            return None
        return headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        headers = await self.admit(scope, send)
        if headers is None:
            return

        async def send_with_limits(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_limits)


_NO_STORE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class HttpMiddleware:
    """HEAD for every GET (the GET's headers, no body) and the Cache-Control of successful reads.

    Pure ASGI: it rewrites the method and adds headers on the way out, never buffering a body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        authenticated = any(name == b"authorization" for name, _ in scope.get("headers", ()))
        path = scope["path"]

        async def send_read(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                read_headers(message, path, authenticated)
            elif head and message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, send_read)


def read_headers(message: dict[str, Any], path: str, authenticated: bool) -> None:
    """The Cache-Control (and `Vary: Authorization`) of a read's response start, in place."""
    if message["status"] in (200, 203, 304) and path not in _NO_STORE_PATHS:
        headers = message.setdefault("headers", [])
        if not any(name.lower() == b"cache-control" for name, _ in headers):
            headers.append((b"cache-control", cache_control(authenticated).encode()))
        headers.append((b"vary", b"Authorization"))
    elif path in _NO_STORE_PATHS:
        message.setdefault("headers", []).append((b"cache-control", b"no-store"))


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


class EdgeLimits:
    """Refuse what no route can take, before any parsing:

    - a NUL byte anywhere in the URL (PostgreSQL text cannot hold one, so every parameter would have to check);
    - request headers above `max_header_bytes` in total (431);
    - a body above its route family's cap (413): `max_body_bytes`, or `max_bulk_bytes` for `/bulk` endpoints
      and `/graphql`. A declared Content-Length is refused before reading; a chunked body is counted while it
      is read and cut off at the cap.
    """

    def __init__(self, *, max_body_bytes: int = 1 << 20, max_bulk_bytes: int = 10 << 20,
                 max_header_bytes: int = 16 << 10) -> None:  # fmt: skip
        self.max_body = max_body_bytes
        self.max_bulk = max_bulk_bytes
        self.max_headers = max_header_bytes

    def cap(self, path: str) -> int:
        """The body cap of the route family `path` belongs to."""
        return self.max_bulk if path.endswith("/bulk") or path == "/graphql" else self.max_body

    async def admit(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """The `receive` the application may read the body through, or None when the request was refused (the
        problem was sent)."""
        if b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b""):
            loc = _nul_location(scope) or ["query"]
            msg = "must not contain NUL bytes (\\u0000)"
            await send_problem(send, 422, "Invalid input", f"{'.'.join(loc)}: {msg}", "INVALID",
                               errors=[{"loc": loc, "msg": msg, "type": "value_error"}])  # fmt: skip
            return None
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
            return None
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and declared is None:
            return receive  # the hot read path pays nothing more
        cap = self.cap(scope["path"])
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await send_problem(send, 413, "Payload too large",
                               f"the request body is larger than {cap} bytes, the limit for {scope['path']}",
                               "TOO_LARGE", limit=cap)  # fmt: skip
            return None
        return _counting(receive, cap, scope["path"])


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


class ApiMiddleware:
    """The whole HTTP edge in one pure-ASGI layer — each wrapping layer costs a call and a `send` closure on
    every request, so request ids, access logs, metrics, edge checks, rate limits, CORS, HEAD, Cache-Control and
    the response cache (app/cache.py) run here, in this order, with one `send` wrapper:

    1. `X-Request-ID` (propagated or minted), timing, the access log line, the last-resort 500;
    2. edge refusals (NUL bytes, header and body sizes: `EdgeLimits`);
    3. the rate limit (`RateLimitMiddleware.admit`; `/healthz` is exempt);
    4. CORS preflights (Starlette's CORSMiddleware answers them; simple responses get its headers here);
    5. a cached anonymous read is answered here (a 304 when `If-None-Match` matches), else the application
       runs (a HEAD as a GET without body) and a cacheable answer is stored on its way out.
    """

    def __init__(self, app: Any, *, edge: EdgeLimits, limiter: RateLimitMiddleware | None, cors: Any,
                 cache: ResponseCache | None) -> None:  # fmt: skip
        self.app = app
        self.edge = edge
        self.limiter = limiter
        self.cors = cors
        self.cache = cache

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        origin = None
        authenticated = preflight = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value[:128]
            elif name == b"origin":
                origin = value
            elif name == b"authorization":
                authenticated = True
            elif name == b"access-control-request-method":
                preflight = True
        if request_id is None:
            request_id = uuid.uuid4().hex.encode()
            scope["headers"] = [*scope["headers"], (b"x-request-id", request_id)]
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "route": None}
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id)]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self._handle(scope, receive, send_with_id, extra, state, origin, authenticated, preflight)
        except Exception:
            # The last net: answer a 500 ourselves rather than let the server drop the keep-alive connection,
            # and count it as the 500 it is.
            if state["status"]:
                raise  # the response had started: nothing sensible can follow it
            log_errors.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_problem(send_with_id, 500, "Internal Server Error",
                               "an unexpected error occurred; it has been logged", "INTERNAL",
                               request_id=request_id.decode(errors="replace"))  # fmt: skip
        finally:
            elapsed = time.perf_counter() - start
            route = state["route"] or getattr(scope.get("route"), "path", "unmatched")
            status = str(state["status"])
            metrics.REQUESTS.labels(scope["method"], route, status).inc()
            metrics.LATENCY.labels(scope["method"], route).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"request_id": request_id.decode(errors="replace"),
                                           "method": scope["method"], "path": scope["path"],
                                           "status": state["status"], "ms": round(elapsed * 1000, 2)})  # fmt: skip

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any, extra: list[tuple[bytes, bytes]],
                      state: dict[str, Any], origin: bytes | None, authenticated: bool, preflight: bool,
                      ) -> None:  # fmt: skip
        receive = await self.edge.admit(scope, receive, send)
        if receive is None:
            return
        path: str = scope["path"]
        if self.limiter is not None and path not in RateLimitMiddleware.EXEMPT:
            limits = await self.limiter.admit(scope, send)
            if limits is None:
                return
            extra[:0] = limits
        method = scope["method"]
        if origin is not None and preflight and method == "OPTIONS":
            await self.cors.preflight_response(request_headers=Headers(scope=scope))(scope, receive, send)
            return
        cors_headers = Headers(scope=scope) if origin is not None else None
        if method not in ("GET", "HEAD"):
            await self.app(scope, receive, self._sender(send, cors_headers))
            return
        head = method == "HEAD"
        inner = {**scope, "method": "GET"} if head else scope
        cache = self.cache
        key = cache.key(inner) if cache is not None else None
        if key is not None and cache is not None:
            entry = cache.get(key)
            if entry is not None:
                state["route"] = entry.route
                await self._from_cache(inner, entry, send, cors_headers, head)
                return
            generation = cache.generation
        captured: list[Any] = []

        async def send_read(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                read_headers(message, path, authenticated)
                if key is not None and cacheable_start(message["status"], message["headers"]):
                    captured.append((message["status"], list(message["headers"])))
                self._finish_start(message, cors_headers)
            elif message["type"] == "http.response.body":
                more = message.get("more_body", False)
                if captured:
                    if more:
                        captured.clear()  # streamed: never cached
                    else:
                        status, headers = captured.pop()
                        route = getattr(inner.get("route"), "path", "unmatched")
                        cache.put(key, generation, status, headers, message.get("body", b""), route)  # type: ignore[union-attr,arg-type]
                if head:
                    if more:
                        return
                    message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(inner, receive, send_read)
        state["route"] = getattr(inner.get("route"), "path", None)

    def _sender(self, send: Any, cors_headers: Headers | None) -> Any:
        async def send_other(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self._finish_start(message, cors_headers)
            await send(message)

        return send_other

    def _finish_start(self, message: dict[str, Any], cors_headers: Headers | None) -> None:
        """CORS on a simple response, as Starlette's CORSMiddleware writes it (in place)."""
        headers = message.setdefault("headers", [])
        if cors_headers is not None:
            mutable = MutableHeaders(scope=message)
            origin = cors_headers["origin"]
            mutable.update(self.cors.simple_headers)
            explicit = (self.cors.allow_credentials if self.cors.allow_all_origins
                        else self.cors.is_allowed_origin(origin=origin))  # fmt: skip
            if explicit:
                self.cors.allow_explicit_origin(mutable, origin)
            else:
                mutable["Vary"] = ", ".join([*mutable.getlist("Vary"), "Origin"])
            return
        vary = [v for n, v in headers if n.lower() == b"vary"]
        if vary:
            headers[:] = [(n, v) for n, v in headers if n.lower() != b"vary"]
        headers.append((b"vary", b", ".join([*vary, b"Origin"])))

    async def _from_cache(self, scope: dict[str, Any], entry: Entry, send: Any, cors_headers: Headers | None,
                          head: bool) -> None:  # fmt: skip
        inm = next((v for n, v in scope["headers"] if n == b"if-none-match"), None)
        if inm is not None and entry.etag is not None and matches(inm.decode("latin-1"), entry.etag.removeprefix("W/")):
            start = {"type": "http.response.start", "status": 304, "headers": ResponseCache.not_modified_headers(entry)}
            body = b""
        else:
            start = {"type": "http.response.start", "status": entry.status, "headers": list(entry.headers)}
            body = b"" if head else entry.body
        self._finish_start(start, cors_headers)
        await send(start)
        await send({"type": "http.response.body", "body": body})
