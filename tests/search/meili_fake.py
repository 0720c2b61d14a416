"""An in-process fake of the Meilisearch REST API, shaped after the API reference: it records every request,
enqueues tasks (`enqueued` on the first poll, `succeeded`/`failed` after), and answers searches with a naive
substring match so the adapter's parsing is exercised end to end. Served to the adapter via httpx.ASGITransport.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SETTINGS_KEYS = {"displayedAttributes", "searchableAttributes", "filterableAttributes", "sortableAttributes",
                 "rankingRules", "stopWords", "nonSeparatorTokens", "separatorTokens", "dictionary", "synonyms",
                 "distinctAttribute", "typoTolerance", "faceting", "pagination", "proximityPrecision",
                 "searchCutoffMs", "localizedAttributes", "facetSearch", "prefixSearch", "embedders"}  # fmt: skip
SEARCH_KEYS = {"q", "offset", "limit", "hitsPerPage", "page", "filter", "facets", "attributesToRetrieve",
               "attributesToCrop", "cropLength", "cropMarker", "attributesToHighlight", "highlightPreTag",
               "highlightPostTag", "showMatchesPosition", "sort", "matchingStrategy", "showRankingScore",
               "showRankingScoreDetails", "rankingScoreThreshold", "attributesToSearchOn", "hybrid", "vector",
               "retrieveVectors", "locales", "distinct"}  # fmt: skip
DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,511}$")
FILTER = re.compile(r'^(\w+) = "((?:[^"\\]|\\.)*)"$')
FILTER_IN = re.compile(r'^(\w+) IN \[((?:"(?:[^"\\]|\\.)*"(?:, )?)+)\]$')  # `field IN ["a", "b"]`
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, type_: str = "invalid_request") -> JSONResponse:
    return JSONResponse({"message": message, "code": code, "type": type_,
                         "link": f"https://docs.meilisearch.com/errors#{code}"}, status_code=status)  # fmt: skip


@dataclass
class Index:
    uid: str
    primary_key: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)


@dataclass
class FakeMeili:
    indexes: dict[str, Index] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    down: bool = False
    fail_documents_with: str | None = None  # a document key that makes its addition task fail
    api_key: str | None = "masterKey"

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app())

    def paths(self) -> list[str]:
        return [f"{m} {p}" for m, p, _ in self.requests]

    # -- tasks ------------------------------------------------------------------------------------------------

    def _enqueue(self, index_uid: str | None, type_: str, apply: Any) -> JSONResponse:
        task = {"uid": len(self.tasks), "batchUid": None, "indexUid": index_uid, "status": "enqueued", "type": type_,
                "canceledBy": None, "details": {}, "error": None, "duration": None, "enqueuedAt": _now(),
                "startedAt": None, "finishedAt": None, "_apply": apply, "_polls": 0}  # fmt: skip
        self.tasks.append(task)
        summary = {k: task[k] for k in ("indexUid", "status", "type", "enqueuedAt")} | {"taskUid": task["uid"]}
        return JSONResponse(summary, status_code=202)

    def _run(self, task: dict[str, Any]) -> None:
        error = task["_apply"]()
        task.update(status="failed" if error else "succeeded", error=error, startedAt=_now(), finishedAt=_now(),
                    duration="PT0.001S")  # fmt: skip

    # -- routes -----------------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        async def dispatch(request: Request) -> Response:
            body = await request.body()
            payload = None
            if body:
                import orjson

                payload = orjson.loads(body)
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            self.requests.append((request.method, path, payload))
            if self.down:
                return Response("upstream down", status_code=503)
            if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return _error(401, "missing_authorization_header", "The Authorization header is missing.", "auth")
            if payload is not None and request.headers.get("content-type") != "application/json":
                return _error(415, "invalid_content_type", "The Content-Type header is not supported.")
            return self._route(request.method, request.url.path.strip("/").split("/"), request, payload)

        return Starlette(routes=[Route("/{path:path}", dispatch, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])

    def _route(self, method: str, parts: list[str], request: Request, payload: Any) -> Response:
        match (method, parts):
            case ("GET", ["tasks", uid]):
                task = self.tasks[int(uid)]
                task["_polls"] += 1
                if task["status"] == "enqueued" and task["_polls"] >= 2:  # the first poll still sees it enqueued
                    self._run(task)
                return JSONResponse({k: v for k, v in task.items() if not k.startswith("_")})
            case ("POST", ["indexes"]):
                assert set(payload) <= {"uid", "primaryKey"}, payload
                uid = payload["uid"]

                def create() -> dict[str, Any] | None:
                    if uid in self.indexes:
                        return {"message": f"Index `{uid}` already exists.", "code": "index_already_exists",
                                "type": "invalid_request", "link": ""}  # fmt: skip
                    self.indexes[uid] = Index(uid, payload.get("primaryKey"))
                    return None

                return self._enqueue(uid, "indexCreation", create)
            case ("GET", ["indexes", uid]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                idx = self.indexes[uid]
                return JSONResponse({"uid": uid, "primaryKey": idx.primary_key, "createdAt": idx.created_at,
                                     "updatedAt": idx.created_at})  # fmt: skip
            case ("DELETE", ["indexes", uid]):
                return self._enqueue(uid, "indexDeletion", lambda: self.indexes.pop(uid, None) and None)
            case ("PATCH", ["indexes", uid, "settings"]):
                unknown = set(payload) - SETTINGS_KEYS
                if unknown:
                    return _error(400, "bad_request", f"Unknown field(s) {sorted(unknown)}")
                return self._enqueue(uid, "settingsUpdate", lambda: self.indexes[uid].settings.update(payload))
            case ("POST", ["indexes", uid, "documents"]):
                assert isinstance(payload, list)
                pk = request.query_params.get("primaryKey")

                def add() -> dict[str, Any] | None:
                    idx = self.indexes.setdefault(uid, Index(uid, pk))
                    idx.primary_key = idx.primary_key or pk
                    for doc in payload:
                        key = doc.get(idx.primary_key or "")
                        if not isinstance(key, str) or not DOC_ID.match(key) or key == self.fail_documents_with:
                            return {"message": f"Document identifier `{key}` is invalid.",
                                    "code": "invalid_document_id", "type": "invalid_request", "link": ""}  # fmt: skip
                    for doc in payload:
                        idx.docs[doc[idx.primary_key]] = doc  # POST replaces whole documents
                    return None

                return self._enqueue(uid, "documentAdditionOrUpdate", add)
            case ("POST", ["indexes", uid, "documents", "delete-batch"]):
                assert isinstance(payload, list) and all(isinstance(k, str) for k in payload)

                def remove() -> None:
                    for k in payload:
                        self.indexes[uid].docs.pop(k, None)

                return self._enqueue(uid, "documentDeletion", remove)
            case ("GET", ["indexes", uid, "documents", doc_id]):
                doc = self.indexes.get(uid, Index(uid, None)).docs.get(doc_id)
                if doc is None:
                    return _error(404, "document_not_found", f"Document `{doc_id}` not found.")
                return JSONResponse(doc)
            case ("GET", ["indexes", uid, "documents"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                offset = int(request.query_params.get("offset", 0))
                limit = int(request.query_params.get("limit", 20))
                fields = request.query_params.get("fields")
                docs = list(self.indexes[uid].docs.values())
                page = [
                    {f: d.get(f) for f in fields.split(",")} if fields else d for d in docs[offset : offset + limit]
                ]
                return JSONResponse({"results": page, "offset": offset, "limit": limit, "total": len(docs)})
            case ("GET", ["indexes", uid, "stats"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                return JSONResponse({"numberOfDocuments": len(self.indexes[uid].docs), "isIndexing": False,
                                     "fieldDistribution": {}})  # fmt: skip
            case ("POST", ["indexes", uid, "search"]):
                return self._search(uid, payload)
            case ("POST", ["swap-indexes"]):
                assert isinstance(payload, list) and all(set(p) <= {"indexes", "rename"} for p in payload)

                def swap() -> None:
                    for pair in payload:
                        a, b = pair["indexes"]
                        self.indexes[a], self.indexes[b] = self.indexes[b], self.indexes[a]
                        self.indexes[a].uid, self.indexes[b].uid = a, b

                return self._enqueue(None, "indexSwap", swap)
        return _error(404, "not_found", f"{method} /{'/'.join(parts)} is not a Meilisearch route")

    def _search(self, uid: str, body: dict[str, Any]) -> Response:
        unknown = set(body) - SEARCH_KEYS
        if unknown:
            return _error(400, "bad_request", f"Unknown field(s) {sorted(unknown)}")
        if uid not in self.indexes:
            return _error(404, "index_not_found", f"Index `{uid}` not found.")
        idx = self.indexes[uid]
        clauses = []
        for clause in body.get("filter") or []:
            m = FILTER.match(clause) or FILTER_IN.match(clause)
            if not m or m.group(1) not in idx.settings.get("filterableAttributes", []):
                return _error(400, "invalid_search_filter", f"Attribute in `{clause}` is not filterable.")
            values = QUOTED.findall(m.group(2)) if m.re is FILTER_IN else [m.group(2)]
            clauses.append((m.group(1), values))

        def keep(doc: dict[str, Any]) -> bool:
            for name, values in clauses:
                have = doc.get(name)
                if not any(have == value or (isinstance(have, list) and value in have) for value in values):
                    return False
            words = (body.get("q") or "").lower().split()
            text = " ".join(str(doc.get(a, "")) for a in idx.settings.get("searchableAttributes", [])).lower()
            return all(w[:5] in text for w in words)  # "typo tolerance": a prefix is enough here

        hits = [d for d in idx.docs.values() if keep(d)]
        facets: dict[str, dict[str, int]] = {}
        for f in body.get("facets") or []:
            counts: dict[str, int] = {}
            for d in hits:
                values = d.get(f)
                for v in values if isinstance(values, list) else [values]:
                    if v is not None:
                        counts[str(v)] = counts.get(str(v), 0) + 1
            facets[f] = counts
        offset, limit = body.get("offset", 0), body.get("limit", 20)
        pre, post = body.get("highlightPreTag", "<em>"), body.get("highlightPostTag", "</em>")
        out = []
        for d in hits[offset : offset + limit]:
            formatted = dict(d)
            for a in body.get("attributesToHighlight") or []:
                if isinstance(d.get(a), str):
                    for w in (body.get("q") or "").split():
                        formatted[a] = re.sub(f"({re.escape(w[:5])}\\w*)", f"{pre}\\1{post}", formatted[a], flags=re.I)
            out.append({**d, "_formatted": formatted, "_rankingScore": 0.9})
        return JSONResponse({"hits": out, "query": body.get("q") or "", "processingTimeMs": 1, "limit": limit,
                             "offset": offset, "estimatedTotalHits": len(hits),
                             "facetDistribution": facets})  # fmt: skip
