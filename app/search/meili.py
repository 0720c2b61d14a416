"""The Meilisearch backend, on Meilisearch's documented REST API through `httpx.AsyncClient`.

Why not `meilisearch-python-sdk`: its AsyncClient builds its own HTTP client (on its `httpx2` fork) with no way to
inject a transport, so the HTTP-level contract tests would have to patch private attributes; its
`wait_for_task` reports "Task N failed" and drops Meilisearch's error code and message, which we must surface in
the outbox; and every search response would pass a pydantic model layer we do not need. The nine endpoints used here
are each written out below exactly as the API reference documents them, and httpx is already a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from app.models.common import LANGS, pick_lang
from app.search.backend import (
    MAX_FACET_VALUES,
    Document,
    EngineError,
    EngineUnavailable,
    SearchBackend,
    SearchQuery,
    SearchResult,
)
from app.services import reference

PRIMARY_KEY = "key"
TEXT_FIELDS = ("title", "summary", "text")
# Meilisearch locales (ISO 639-3) for our UN languages; `localizedAttributes` ties each `*_{lang}` field to one.
LOCALES = {"en": "eng", "fr": "fra", "es": "spa", "ru": "rus", "ar": "ara", "zh": "zho"}
MAX_TOTAL_HITS = 1100  # offset ≤ 1000 + limit ≤ 100

SETTINGS: dict[str, Any] = {
    "searchableAttributes": [
        *(f"title_{lang}" for lang in LANGS), "keywords", *(f"summary_{lang}" for lang in LANGS),
        *(f"text_{lang}" for lang in LANGS),
    ],
    "filterableAttributes": ["kind", "party", "type", "subjects", "gbf_targets", "languages"],
    "sortableAttributes": ["date", "updated_at"],
    "displayedAttributes": ["*"],
    "localizedAttributes": [{"attributePatterns": [f"*_{lang}"], "locales": [loc]} for lang, loc in LOCALES.items()],
    "typoTolerance": {"enabled": True},
    "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
    "faceting": {"maxValuesPerFacet": MAX_FACET_VALUES},
}  # fmt: skip


def flatten(doc: Document) -> dict[str, Any]:
    """Our document → Meilisearch's: lstrings become `title_en`, `summary_fr`, ... so locales apply per field."""
    out = {k: v for k, v in doc.items() if k not in TEXT_FIELDS}
    for field in TEXT_FIELDS:
        for lang, value in (doc.get(field) or {}).items():
            out[f"{field}_{lang}"] = value
    return out


def unflatten(stored: dict[str, Any]) -> Document:
    """Meilisearch's document → ours."""
    doc: Document = {k: v for k, v in stored.items() if not any(k.startswith(f + "_") for f in TEXT_FIELDS)}
    for field in TEXT_FIELDS:
        doc[field] = {lang: stored[f"{field}_{lang}"] for lang in LANGS if stored.get(f"{field}_{lang}")}
    return doc


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(query: SearchQuery) -> list[str]:
    """Meilisearch filter clauses (an array is AND-ed); `subjects = "X"` matches arrays containing X."""
    pairs = (("kind", query.kind), ("party", query.party), ("type", query.type))
    out = [f"{name} = {_quote(value)}" for name, value in pairs if value is not None]
    for name, field, value in (("subject", "subjects", query.subject), ("gbf_target", "gbf_targets", query.gbf_target)):
        if value is not None:  # a broader term matches its narrower ones too
            terms = reference.with_narrower(name, value)
            out.append(f"{field} = {_quote(value)}" if len(terms) == 1 else
                       f"{field} IN [{', '.join(_quote(t) for t in terms)}]")  # fmt: skip
    return out


class MeiliBackend(SearchBackend):
    """Meilisearch (production): one index of all kinds, `key` as primary key, tasks awaited and checked."""

    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        index: str = "chm_documents",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        task_timeout: float = 60.0,
        poll_interval: float = 0.05,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout,
                                        transport=transport)  # fmt: skip
        self.index = index
        self.task_timeout = task_timeout
        self.poll_interval = poll_interval
        self._ready = False

    # -- HTTP -------------------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                    missing_ok: bool = False) -> Any:  # fmt: skip
        content = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            resp = await self.client.request(method, path, content=content, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"Meilisearch unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code >= 500:
            raise EngineUnavailable(f"Meilisearch answered {resp.status_code} to {method} {path}")
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            raise EngineError(f"Meilisearch {resp.status_code} on {method} {path}: "
                              f"{body.get('code', '?')}: {body.get('message', resp.text[:200])}")  # fmt: skip
        return resp.json() if resp.content else None

    async def _wait(self, task: dict[str, Any]) -> dict[str, Any]:
        """Poll GET /tasks/{taskUid} until the task is done; a failed or canceled task raises with its error."""
        uid = task["taskUid"]
        deadline = time.monotonic() + self.task_timeout
        while True:
            result = await self._call("GET", f"/tasks/{uid}")
            status = result.get("status")
            if status == "succeeded":
                return result
            if status in ("failed", "canceled"):
                error = result.get("error") or {}
                raise EngineError(f"Meilisearch task {uid} ({result.get('type')}) {status}: "
                                  f"{error.get('code', '?')}: {error.get('message', '')}")  # fmt: skip
            if time.monotonic() > deadline:
                raise EngineUnavailable(f"Meilisearch task {uid} still {status} after {self.task_timeout:.0f}s")
            await asyncio.sleep(self.poll_interval)

    async def _ensure_index(self, uid: str) -> None:
        if await self._call("GET", f"/indexes/{uid}", missing_ok=True) is None:
            task = await self._call("POST", "/indexes", json={"uid": uid, "primaryKey": PRIMARY_KEY})
            try:
                await self._wait(task)
            except EngineError as exc:
                if "index_already_exists" not in str(exc):  # another worker created it meanwhile
                    raise
        await self._wait(await self._call("PATCH", f"/indexes/{uid}/settings", json=SETTINGS))

    # -- interface --------------------------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        if not self._ready:
            await self._ensure_index(self.index)
            self._ready = True

    async def _add(self, uid: str, documents: list[Document]) -> dict[str, Any]:
        return await self._call("POST", f"/indexes/{uid}/documents", params={"primaryKey": PRIMARY_KEY},
                                json=[flatten(d) for d in documents])  # fmt: skip

    async def upsert(self, documents: list[Document]) -> None:
        if documents:
            await self.ensure_ready()
            await self._wait(await self._add(self.index, documents))

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self.ensure_ready()
            await self._wait(await self._call("POST", f"/indexes/{self.index}/documents/delete-batch", json=keys))

    async def apply(self, upserts: list[Document], deletes: list[str]) -> None:
        """Enqueue both tasks, then await both (Meilisearch runs an index's tasks in order)."""
        await self.ensure_ready()
        tasks = []
        if upserts:
            tasks.append(await self._add(self.index, upserts))
        if deletes:
            tasks.append(await self._call("POST", f"/indexes/{self.index}/documents/delete-batch", json=deletes))
        for task in tasks:
            await self._wait(task)

    async def search(self, query: SearchQuery, *, conn: AsyncConnection | None = None) -> SearchResult:
        body: dict[str, Any] = {
            "q": query.q,
            "offset": query.offset,
            "limit": query.limit,
            "filter": filter_expression(query),
            "facets": list(query.facets),
            "attributesToHighlight": [f"title_{lang}" for lang in LANGS],
            "attributesToCrop": [f"{f}_{lang}" for f in ("summary", "text") for lang in LANGS],
            "cropLength": 30,
            "highlightPreTag": "<em>",
            "highlightPostTag": "</em>",
            "showRankingScore": True,
        }
        if query.lang:
            body["locales"] = [LOCALES[query.lang]]
        if not query.q:
            body["sort"] = ["date:desc"]
        result = await self._call("POST", f"/indexes/{self.index}/search", json=body, missing_ok=True)
        if result is None:  # no index yet: nothing was ever published
            return SearchResult(hits=[], facets={f: {} for f in query.facets}, estimated_total=0)
        hits = [self._hit(h, query) for h in result.get("hits", [])]
        facets = {f: dict((result.get("facetDistribution") or {}).get(f, {})) for f in query.facets}
        return SearchResult(hits=hits, facets=facets, estimated_total=int(result.get("estimatedTotalHits", 0)))

    @staticmethod
    def _hit(raw: dict[str, Any], query: SearchQuery) -> dict[str, Any]:
        doc = unflatten(raw)
        formatted = raw.get("_formatted") or {}
        titles = doc["title"]
        lang = query.lang if query.lang in titles else ("en" if "en" in titles else next(iter(titles), None))
        highlights: dict[str, str] = {}
        if query.q and lang:
            if "<em>" in str(formatted.get(f"title_{lang}", "")):
                highlights["title"] = formatted[f"title_{lang}"]
            for f in ("summary", "text"):
                snippet = formatted.get(f"{f}_{lang}")
                if snippet and "text" not in highlights:
                    highlights["text"] = snippet
        return {"kind": doc["kind"], "id": doc["id"], "uid": doc.get("uid"), "party": doc.get("party"),
                "type": doc.get("type"), "revision": doc.get("revision"), "date": doc.get("date"),
                "title": pick_lang(titles, query.lang), "lang": lang, "score": raw.get("_rankingScore"),
                "highlights": highlights}  # fmt: skip

    async def stats(self) -> dict[str, Any]:
        stats = await self._call("GET", f"/indexes/{self.index}/stats", missing_ok=True) or {}
        return {"index": self.index, "documents": stats.get("numberOfDocuments", 0),
                "indexing": stats.get("isIndexing", False)}  # fmt: skip

    async def get_document(self, key: str) -> Document | None:
        stored = await self._call("GET", f"/indexes/{self.index}/documents/{key}", missing_ok=True)
        return unflatten(stored) if stored else None

    async def keys(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            page = await self._call("GET", f"/indexes/{self.index}/documents", missing_ok=True,
                                    params={"fields": PRIMARY_KEY, "limit": 1000, "offset": offset})  # fmt: skip
            if not page:
                return out
            out.update(d[PRIMARY_KEY] for d in page.get("results", []))
            offset += 1000
            if offset >= int(page.get("total", 0)):
                return out

    async def build_and_swap(self, batches: AsyncIterator[list[Document]]) -> int:
        """Fill `{index}_build_{ts}` (same settings), POST /swap-indexes, then delete the old copy."""
        build = f"{self.index}_build_{int(time.time() * 1000)}"
        await self.ensure_ready()  # swap needs the live index to exist
        await self._ensure_index(build)
        count = 0
        try:
            async for batch in batches:
                if batch:
                    await self._wait(await self._add(build, batch))
                    count += len(batch)
            await self._wait(await self._call("POST", "/swap-indexes", json=[{"indexes": [self.index, build]}]))
        except BaseException:
            with contextlib.suppress(EngineError):  # drop the half-built index; the live one is untouched
                await self._wait(await self._call("DELETE", f"/indexes/{build}"))
            raise
        await self._wait(await self._call("DELETE", f"/indexes/{build}"))  # after the swap it holds the old documents
        return count

    async def close(self) -> None:
        await self.client.aclose()
