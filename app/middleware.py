"""Pure ASGI middleware: request ids and access logs (cheaper than BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

log = logging.getLogger("chm.access")


class RequestIdMiddleware:
    """Propagate or mint `X-Request-ID`, and log each request as one structured line."""

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
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"request_id": request_id.decode(errors="replace"),
                                           "method": scope["method"], "path": scope["path"], "status": status,
                                           "ms": round((time.perf_counter() - start) * 1000, 2)})  # fmt: skip
