"""What the HTTP layer costs per request, in-process (CPU time, so a busy machine does not blur it).

Times one list page (the 50-record body of `GET /api/v1/records`) through: a bare ASGI app; the same app
behind HttpMiddleware (HEAD, Cache-Control) and CompressMiddleware without `Accept-Encoding`; with gzip; with
brotli; plus the unknown-parameter check and the list ETag. Compare the extra microseconds with the cost of
the whole request (`make bench`).

    .venv/bin/python bench/http_overhead.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette_compress import CompressMiddleware

from app.main import BROTLI_QUALITY, COMPRESS_MIN_BYTES, GZIP_LEVEL
from app.middleware import HttpMiddleware
from app.services.etags import weak_etag_of


def page(n: int = 50) -> bytes:
    now = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    item = {"id": str(uuid.uuid4()), "uid": "CHM-RES-BR-000123-2", "party": "BR", "type": "resource",
            "status": "published", "revision": 2, "title": {"en": "A national report on biodiversity " * 2,
            "fr": "Un rapport national sur la biodiversité " * 2}, "summary": {"en": "Summary text. " * 20},
            "body": {"en": "Body text in markdown. " * 40}, "languages": ["en", "fr"], "links": [],
            "keywords": ["forests", "mangroves"], "subjects": ["CBD-SUBJECT-FORESTS"],
            "gbf_targets": ["GBF-TARGET-03"], "aichi_targets": [], "countries": ["BR"], "created_at": now,
            "updated_at": now, "published_at": now}  # fmt: skip
    return orjson.dumps({"items": [item] * n, "next_cursor": "abc"})


def bare(body: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def run(app: Any, n: int, headers: list[tuple[bytes, bytes]]) -> float:
    scope = {"type": "http", "method": "GET", "path": "/api/v1/records", "headers": headers, "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    sizes: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sizes.append(len(message.get("body", b"")))

    for _ in range(50):
        await app(dict(scope), receive, send)
    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    body = page()
    base = bare(body)
    stack = HttpMiddleware(
        CompressMiddleware(
            base, minimum_size=COMPRESS_MIN_BYTES, zstd=False, brotli_quality=BROTLI_QUALITY, gzip_level=GZIP_LEVEL
        )
    )
    rows = [
        ("bare ASGI app", asyncio.run(run(base, args.n, []))),
        ("+ HttpMiddleware + CompressMiddleware, identity", asyncio.run(run(stack, args.n, []))),
        ("+ ..., Accept-Encoding: gzip", asyncio.run(run(stack, args.n // 4, [(b"accept-encoding", b"gzip")]))),
        ("+ ..., Accept-Encoding: br", asyncio.run(run(stack, args.n // 4, [(b"accept-encoding", b"br")]))),
    ]
    start = time.process_time()
    for _ in range(args.n):
        weak_etag_of(body)
    rows.append(("list weak ETag (SHA-1 of the body)", (time.process_time() - start) / args.n * 1e6))
    print(f"body: {len(body):,} bytes")
    for name, us in rows:
        print(f"{name:<50} {us:9.1f} µs/request")


if __name__ == "__main__":
    main()
