"""`chm mirror`: reproduce another instance's public state here, from bundles (full, then deltas) or by
following its change feed online. The writes go through app/services/mirror.py."""

from __future__ import annotations

import asyncio
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.principal import Principal
from app.exchange import bundle
from app.services import mirror as mirror_service
from app.services import snapshot

BATCH = 1000


class MirrorError(Exception):
    """The bundle or the remote server cannot be mirrored."""


async def apply_bundle(engine: Any, path: Path, principal: Principal, *, public_key: Any = None,
                       own: frozenset[str] = frozenset(), progress: Callable[[str, int], None] | None = None,
                       ) -> dict[str, Counter[str]]:  # fmt: skip
    """Apply a bundle (verified first: digests always, the signature when a key is given), kind by kind."""
    check = bundle.verify(path, public_key)
    if not check.ok:
        raise MirrorError(f"{path} does not verify (signature {check.signature}; changed {check.changed}, "
                          f"added {check.added}, removed {check.removed})")  # fmt: skip
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    totals: dict[str, Counter[str]] = {}
    with zipfile.ZipFile(path) as zf:
        plan = [(k, bundle.FILES[k]) for k in snapshot.KINDS] + [("deletion", bundle.DELETIONS)]
        for kind, name in plan:
            counts: Counter[str] = Counter()
            batch: list[dict[str, Any]] = []
            for _, item in bundle.iter_lines(zf, name):
                batch.append(item)
                if len(batch) >= BATCH:
                    counts += await _apply(sessions, principal, kind, batch, own)
                    if progress:
                        progress(kind, len(batch))
                    batch = []
            if batch:
                counts += await _apply(sessions, principal, kind, batch, own)
                if progress:
                    progress(kind, len(batch))
            totals[kind] = counts
    return totals


async def _apply(sessions: Any, principal: Principal, kind: str, items: list[dict[str, Any]],
                 own: frozenset[str]) -> Counter[str]:  # fmt: skip
    async with sessions() as session, session.begin():
        return await mirror_service.apply(session, principal, kind, items, own=own)


# --- following a remote change feed ----------------------------------------------------------------------------


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> httpx.Response:
    for attempt in range(5):
        resp = await client.get(path, params=params or None)
        if resp.status_code != 429 and resp.status_code < 500:
            return resp
        await asyncio.sleep(float(resp.headers.get("Retry-After") or 2**attempt))  # back-off, not synchronisation
    raise MirrorError(f"{path}: the source keeps answering {resp.status_code}")


async def _fetch_record(client: httpx.AsyncClient, rid: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    resp = await _get(client, f"/api/v1/records/{rid}")
    if resp.status_code == 410:
        tomb = resp.json().get("tombstone") or {}
        uid = tomb.get("uid")
        if not uid:
            return None, []
        return {**tomb, "revision": int(uid.rsplit("-", 1)[1]),
                "updated_at": tomb.get("withdrawn_at")}, []  # fmt: skip
    if resp.status_code != 200:
        return None, []
    record = resp.json()
    revisions: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await _get(client, f"/api/v1/records/{rid}/revisions", limit=200,
                           **({"cursor": cursor} if cursor else {}))).json()  # fmt: skip
        revisions += [r for r in page["items"] if r["revision"] < record["revision"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return record, revisions


async def _decision_codes(client: httpx.AsyncClient) -> dict[str, str]:
    codes, cursor = {}, None
    while True:
        page = (await _get(client, "/api/v1/decisions", limit=200, **({"cursor": cursor} if cursor else {}))).json()
        codes.update({d["id"]: d["code"] for d in page["items"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return codes


async def follow(engine: Any, client: httpx.AsyncClient, principal: Principal, *, since: int = 0,
                 own: frozenset[str] = frozenset(), once: bool = False, poll_seconds: float = 10.0,
                 on_batch: Callable[[int, Counter[str]], None] | None = None) -> int:  # fmt: skip
    """Apply the source's changes after `since` (re-reading each changed entry's current public state);
    returns the last seq applied. With `once`, stop when caught up; else poll."""
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    codes: dict[str, str] | None = None
    while True:
        page = (await _get(client, "/api/v1/changes", since=since, limit=200)).json()
        items = page["items"]
        if not items:
            if once:
                return since
            await asyncio.sleep(poll_seconds)  # polling interval of a follower
            continue
        counts: Counter[str] = Counter()
        by_kind: dict[str, list[dict[str, Any]]] = {}
        revisions: list[dict[str, Any]] = []
        deletions: list[dict[str, Any]] = []
        for ch in {(c["kind"], c["id"]): c for c in items}.values():
            kind, eid = ch["kind"], ch["id"]
            if kind == "record":
                record, older = await _fetch_record(client, eid)
                if record is not None:
                    by_kind.setdefault("record", []).append(record)
                    revisions += older
            elif kind == "decision":  # read by code: look the code of the id up
                codes = codes if codes is not None and eid in codes else await _decision_codes(client)
                if eid in codes:
                    by_kind.setdefault(kind, []).append((await _get(client, f"/api/v1/decisions/{codes[eid]}")).json())
                else:
                    deletions.append({"kind": kind, "id": eid})
            elif kind in snapshot.DELETABLE:  # nodes, cooperation requests, opportunities, ...: by id
                resp = await _get(client, f"/api/v1/{bundle.plural(kind)}/{eid}")
                if resp.status_code == 200:
                    by_kind.setdefault(kind, []).append(resp.json())
                elif resp.status_code == 404:
                    deletions.append({"kind": kind, "id": eid})
            # offers change with their request, which the feed lists too
        for kind in snapshot.KINDS:
            if by_kind.get(kind):
                counts += await _apply(sessions, principal, kind, by_kind[kind], own)
        if revisions:
            counts += await _apply(sessions, principal, "record-revision", revisions, own)
        if deletions:
            counts += await _apply(sessions, principal, "deletion", deletions, own)
        since = int(page["next_since"])
        if on_batch:
            on_batch(since, counts)
