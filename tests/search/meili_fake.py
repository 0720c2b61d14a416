"""A fake Meilisearch on a real loopback socket (uvicorn), shaped after the API reference, so the official
`meilisearch` client talks to it unchanged.

What it keeps of the documented API: every write answers `202` with a task summary (`taskUid`, `indexUid`,
`status`, `type`, `enqueuedAt`); a task moves `enqueued` → `processing` → `succeeded`/`failed`, one step per
`GET /tasks/{uid}`, and the tasks run in uid order (a poll of task 5 first finishes 0–4), as Meilisearch's single
task queue does; a failed task carries `error: {message, code, type, link}`; a synchronous error answers 4xx
with the same four fields. Searches use a naive prefix match so the adapter's parsing is exercised end to end.
It records every request (method, path with query, JSON body) for the contract tests.

`python -m tests.search.meili_fake --port 0` serves one on its own (the benchmark runs it in a subprocess so the
fake does not share the adapter's interpreter); it prints `listening on http://127.0.0.1:PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response
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
FETCH_KEYS = {"offset", "limit", "fields", "filter", "retrieveVectors", "ids", "sort"}
DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,511}$")
INDEX_UID = re.compile(r"^[A-Za-z0-9_-]{1,400}$")
IN_FILTER = re.compile(r"^(\w+) IN \[(.*)\]$")
FILTER = re.compile(r'^(\w+) = "((?:[^"\\]|\\.)*)"$')
VERSION = "1.12.0"  # the minor version compose.yaml pins; the fake answers like it


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def error_body(code: str, message: str, type_: str = "invalid_request") -> dict[str, str]:
    return {"message": message, "code": code, "type": type_, "link": f"https://docs.meilisearch.com/errors#{code}"}


def _error(status: int, code: str, message: str, type_: str = "invalid_request") -> JSONResponse:
    return JSONResponse(error_body(code, message, type_), status_code=status)


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
    user_agents: list[str] = field(default_factory=list)  # one per request, in the same order
    down: bool = False  # answer 503 to everything (an engine that is up but failing)
    fail_documents_with: str | None = None  # a document key that makes its addition task fail
    api_key: str | None = "masterKey"
    url: str = ""  # set by serve()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [f"{m} {p}" for m, p, _ in self.requests]

    # -- tasks ------------------------------------------------------------------------------------------------

    def _enqueue(self, index_uid: str | None, type_: str, apply: Any, details: dict[str, Any]) -> JSONResponse:
        task = {"uid": len(self.tasks), "batchUid": None, "indexUid": index_uid, "status": "enqueued", "type": type_,
                "canceledBy": None, "details": details, "error": None, "duration": None, "enqueuedAt": _now(),
                "startedAt": None, "finishedAt": None, "_apply": apply}  # fmt: skip
        self.tasks.append(task)
        summary = {k: task[k] for k in ("indexUid", "status", "type", "enqueuedAt")} | {"taskUid": task["uid"]}
        return JSONResponse(summary, status_code=202)

    def _advance(self, task: dict[str, Any]) -> None:
        """One poll, one step: enqueued → processing → done; earlier tasks finish first (one queue, in order)."""
        if task["status"] == "enqueued":
            task.update(status="processing", startedAt=_now())
        elif task["status"] == "processing":
            for earlier in self.tasks[: task["uid"] + 1]:
                if earlier["status"] in ("enqueued", "processing"):
                    self._finish(earlier)

    def _finish(self, task: dict[str, Any]) -> None:
        error = task["_apply"]()
        task.update(status="failed" if error else "succeeded", error=error, startedAt=task["startedAt"] or _now(),
                    finishedAt=_now(), duration="PT0.001S")  # fmt: skip

    def drain(self) -> None:
        """Finish every pending task (what a real engine does on its own, between polls)."""
        with self.lock:
            for task in self.tasks:
                if task["status"] in ("enqueued", "processing"):
                    self._finish(task)

    # -- routes -----------------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        async def dispatch(request: Request) -> Response:
            body = await request.body()
            payload = orjson.loads(body) if body else None
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            with self.lock:
                self.requests.append((request.method, path, payload))
                self.user_agents.append(request.headers.get("user-agent", ""))
                if self.down:
                    return Response("upstream down", status_code=503)
                auth = request.headers.get("authorization")
                if self.api_key and not auth:
                    return _error(401, "missing_authorization_header", "The Authorization header is missing. It "
                                  "must use the bearer authorization method.", "auth")  # fmt: skip
                if self.api_key and auth != f"Bearer {self.api_key}":
                    return _error(403, "invalid_api_key", "The provided API key is invalid.", "auth")
                if payload is not None and request.headers.get("content-type") != "application/json":
                    return _error(415, "invalid_content_type", "The Content-Type header is not supported.")
                return self._route(request.method, request.url.path.strip("/").split("/"), request, payload)

        return Starlette(routes=[Route("/{path:path}", dispatch, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])])

    def _route(self, method: str, parts: list[str], request: Request, payload: Any) -> Response:
        match (method, parts):
            case ("GET", ["health"]):
                return JSONResponse({"status": "available"})
            case ("GET", ["version"]):
                return JSONResponse({"commitSha": "fake", "commitDate": _now(), "pkgVersion": VERSION})
            case ("GET", ["tasks", uid]):
                if not uid.isdigit() or int(uid) >= len(self.tasks):
                    return _error(404, "task_not_found", f"Task `{uid}` not found.")
                task = self.tasks[int(uid)]
                self._advance(task)
                return JSONResponse({k: v for k, v in task.items() if not k.startswith("_")})
            case ("POST", ["indexes"]):
                if not isinstance(payload, dict) or set(payload) - {"uid", "primaryKey"} or "uid" not in payload:
                    return _error(400, "bad_request", f"Invalid index creation payload {payload!r}")
                uid = payload["uid"]
                if not INDEX_UID.match(uid):
                    return _error(400, "invalid_index_uid", f"`{uid}` is not a valid index uid.")

                def create() -> dict[str, Any] | None:
                    if uid in self.indexes:
                        return error_body("index_already_exists", f"Index `{uid}` already exists.")
                    self.indexes[uid] = Index(uid, payload.get("primaryKey"))
                    return None

                return self._enqueue(uid, "indexCreation", create, {"primaryKey": payload.get("primaryKey")})
            case ("GET", ["indexes", uid]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                idx = self.indexes[uid]
                return JSONResponse({"uid": uid, "primaryKey": idx.primary_key, "createdAt": idx.created_at,
                                     "updatedAt": idx.created_at})  # fmt: skip
            case ("DELETE", ["indexes", uid]):

                def drop() -> dict[str, Any] | None:
                    if self.indexes.pop(uid, None) is None:
                        return error_body("index_not_found", f"Index `{uid}` not found.")
                    return None

                return self._enqueue(uid, "indexDeletion", drop, {"deletedDocuments": 0})
            case ("GET", ["indexes", uid, "settings"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                return JSONResponse(self.indexes[uid].settings)
            case ("PATCH", ["indexes", uid, "settings"]):
                unknown = set(payload or {}) - SETTINGS_KEYS
                if unknown:
                    return _error(400, "bad_request", f"Unknown field(s) {sorted(unknown)}")

                def update() -> None:  # PATCH on a missing index creates it (documented)
                    self.indexes.setdefault(uid, Index(uid, None)).settings.update(payload)

                return self._enqueue(uid, "settingsUpdate", update, dict(payload))
            case ("POST", ["indexes", uid, "documents"]):
                if not isinstance(payload, list):
                    return _error(400, "malformed_payload", "The `json` payload must be an array of objects.")
                pk = request.query_params.get("primaryKey")

                def add() -> dict[str, Any] | None:
                    idx = self.indexes.setdefault(uid, Index(uid, pk))
                    idx.primary_key = idx.primary_key or pk
                    for doc in payload:
                        key = doc.get(idx.primary_key or "")
                        if not isinstance(key, str) or not DOC_ID.match(key) or key == self.fail_documents_with:
                            return error_body("invalid_document_id", f"Document identifier `{key}` is invalid. A "
                                              "document identifier can be of type integer or string, only composed "
                                              "of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and "
                                              "underscores (_), and can not be more than 511 bytes.")  # fmt: skip
                    for doc in payload:
                        idx.docs[doc[idx.primary_key]] = doc  # POST replaces whole documents
                    return None

                return self._enqueue(uid, "documentAdditionOrUpdate", add, {"receivedDocuments": len(payload)})
            case ("POST", ["indexes", uid, "documents", "delete-batch"]):
                if not isinstance(payload, list) or not all(isinstance(k, str | int) for k in payload):
                    return _error(400, "invalid_document_ids", "The payload must be an array of document ids.")

                def remove() -> dict[str, Any] | None:
                    if uid not in self.indexes:
                        return error_body("index_not_found", f"Index `{uid}` not found.")
                    for k in payload:
                        self.indexes[uid].docs.pop(str(k), None)
                    return None

                return self._enqueue(uid, "documentDeletion", remove, {"providedIds": len(payload)})
            case ("POST", ["indexes", uid, "documents", "delete"]):
                m = IN_FILTER.match(payload.get("filter") or "") if isinstance(payload, dict) else None
                if not m:
                    return _error(400, "invalid_document_filter", f"Invalid filter in {payload!r}.")
                attribute = m.group(1)
                values = {orjson.loads(v) for v in re.findall(r'"(?:[^"\\]|\\.)*"', m.group(2))}

                def remove_matching() -> dict[str, Any] | None:
                    if uid not in self.indexes:
                        return error_body("index_not_found", f"Index `{uid}` not found.")
                    if attribute not in self.indexes[uid].settings.get("filterableAttributes", []):
                        return error_body("invalid_document_filter", f"Attribute `{attribute}` is not filterable.")
                    docs = self.indexes[uid].docs
                    for k in [k for k, d in docs.items() if d.get(attribute) in values]:
                        del docs[k]
                    return None

                return self._enqueue(uid, "documentDeletion", remove_matching, {"originalFilter": payload["filter"]})
            case ("POST", ["indexes", uid, "documents", "fetch"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                body = payload or {}
                if set(body) - FETCH_KEYS:
                    return _error(400, "bad_request", f"Unknown field(s) {sorted(set(body) - FETCH_KEYS)}")
                offset, limit, fields = int(body.get("offset", 0)), int(body.get("limit", 20)), body.get("fields")
                docs = list(self.indexes[uid].docs.values())
                page = [{f: d[f] for f in fields if f in d} if fields else d for d in docs[offset : offset + limit]]
                return JSONResponse({"results": page, "offset": offset, "limit": limit, "total": len(docs)})
            case ("GET", ["indexes", uid, "documents"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                q = request.query_params
                offset, limit, fields = int(q.get("offset", 0)), int(q.get("limit", 20)), q.get("fields")
                docs = list(self.indexes[uid].docs.values())
                page = [{f: d[f] for f in fields.split(",") if f in d} if fields else d
                        for d in docs[offset : offset + limit]]  # fmt: skip
                return JSONResponse({"results": page, "offset": offset, "limit": limit, "total": len(docs)})
            case ("GET", ["indexes", uid, "documents", doc_id]):
                doc = self.indexes.get(uid, Index(uid, None)).docs.get(doc_id)
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                if doc is None:
                    return _error(404, "document_not_found", f"Document `{doc_id}` not found.")
                return JSONResponse(doc)
            case ("GET", ["indexes", uid, "stats"]):
                if uid not in self.indexes:
                    return _error(404, "index_not_found", f"Index `{uid}` not found.")
                docs = self.indexes[uid].docs.values()
                distribution: dict[str, int] = {}
                for d in docs:
                    for k in d:
                        distribution[k] = distribution.get(k, 0) + 1
                return JSONResponse({"numberOfDocuments": len(docs), "isIndexing": False,
                                     "fieldDistribution": distribution})  # fmt: skip
            case ("POST", ["indexes", uid, "search"]):
                return self._search(uid, payload or {})
            case ("POST", ["swap-indexes"]):
                if not isinstance(payload, list) or not all(
                    isinstance(p, dict) and set(p) <= {"indexes", "rename"} and len(p.get("indexes", [])) == 2
                    for p in payload
                ):
                    return _error(400, "invalid_swap_indexes", "Each swap must name exactly two indexes.")

                def swap() -> dict[str, Any] | None:
                    for pair in payload:
                        missing = [u for u in pair["indexes"] if u not in self.indexes]
                        if missing:
                            return error_body("index_not_found", f"Indexes {missing} not found.")
                    for pair in payload:
                        a, b = pair["indexes"]
                        self.indexes[a], self.indexes[b] = self.indexes[b], self.indexes[a]
                        self.indexes[a].uid, self.indexes[b].uid = a, b
                    return None

                return self._enqueue(None, "indexSwap", swap, {"swaps": payload})
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
            m = FILTER.match(clause) or IN_FILTER.match(clause)  # `a = "x"` or `a IN ["x", "y"]`
            if not m or m.group(1) not in idx.settings.get("filterableAttributes", []):
                return _error(400, "invalid_search_filter", f"Attribute in `{clause}` is not filterable.")
            if m.re is IN_FILTER:
                values = [orjson.loads(v) for v in re.findall(r'"(?:[^"\\]|\\.)*"', m.group(2))]
            else:
                values = [m.group(2)]
            clauses.append((m.group(1), values))
        for rule in body.get("sort") or []:
            if rule.split(":")[0] not in idx.settings.get("sortableAttributes", []):
                return _error(400, "invalid_search_sort", f"Attribute in `{rule}` is not sortable.")

        words = (body.get("q") or "").lower().split()
        searchable = idx.settings.get("searchableAttributes", ["*"])

        def keep(doc: dict[str, Any]) -> bool:
            for name, values in clauses:
                have = doc.get(name)
                if not any(have == value or (isinstance(have, list) and value in have) for value in values):
                    return False
            text = " ".join(str(v) for k, v in doc.items() if "*" in searchable or k in searchable).lower()
            return all(w[:5] in text for w in words)  # "typo tolerance": a prefix is enough here

        hits = [d for d in idx.docs.values() if keep(d)]
        for rule in reversed(body.get("sort") or []):
            name, _, order = rule.partition(":")
            hits.sort(key=lambda d: str(d.get(name) or ""), reverse=order == "desc")
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
                    for w in words:
                        formatted[a] = re.sub(f"({re.escape(w[:5])}\\w*)", f"{pre}\\1{post}", formatted[a], flags=re.I)
            out.append({**d, "_formatted": formatted, "_rankingScore": 0.9})
        return JSONResponse({"hits": out, "query": body.get("q") or "", "processingTimeMs": 1, "limit": limit,
                             "offset": offset, "estimatedTotalHits": len(hits),
                             "facetDistribution": facets})  # fmt: skip


@contextlib.contextmanager
def serve(fake: FakeMeili | None = None, port: int = 0) -> Iterator[FakeMeili]:
    """Run `fake` on 127.0.0.1:`port` (0: a free one) in a thread with its own event loop; sets its `url`."""
    fake = fake or FakeMeili()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(fake.app(), log_level="warning", access_log=False, lifespan="off", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started and thread.is_alive():
        started.wait(0.01)  # a bounded wait for the server's own flag, not a sleep standing in for it
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake Meilisearch on a loopback socket")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="masterKey")
    args = parser.parse_args()
    fake = FakeMeili(api_key=args.api_key or None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", args.port))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", access_log=False, lifespan="off",
                                  loop="uvloop", http="httptools")).run(sockets=[sock])  # fmt: skip


if __name__ == "__main__":
    main()
