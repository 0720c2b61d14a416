"""The real commands on Meilisearch: `chm serve` (with its in-process worker) and `chm reindex`, as processes, with
MEILI_URL pointing at the fake on a loopback socket; every engine call goes through the official client."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.search.meili_fake import FakeMeili, serve
from tests.search.util import publish_new

CHM = str(Path(sys.executable).parent / "chm")
INDEX = "chmapp_documents"


def _until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake() -> Iterator[FakeMeili]:
    with serve() as f:
        yield f


@pytest.fixture
def env(fake: FakeMeili, engine: object) -> dict[str, str]:
    # DATABASE_URL and CHM_DATA_DIR come from the conftest fixtures' environment
    return {**os.environ, "MEILI_URL": fake.url, "MEILI_KEY": "masterKey", "MEILI_INDEX_PREFIX": "chmapp",
            "CHM_INPROCESS_WORKER": "true", "CHM_SEARCH_POLL_SECONDS": "0.2"}  # fmt: skip


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([CHM, "serve", "--no-migrate", "--port", str(port)], env=env,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "chm serve exited"
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _until(up, "chm serve")
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def _search(base: str, q: str) -> list[str]:
    body = httpx.get(f"{base}/api/v1/search", params={"q": q}, timeout=10).json()
    return [h["id"] for h in body["hits"]]


async def test_serve_indexes_and_searches_then_reindex_swaps(fake: FakeMeili, served: str, env: dict[str, str]) -> None:
    rid = await publish_new(title={"en": "Pollinator atlas"}, party="BR", type="news")
    await asyncio.to_thread(_until, lambda: _search(served, "pollinatr") == [str(rid)], "the record to be searchable")
    await asyncio.to_thread(_after_publish, fake, served, env, str(rid))


def _after_publish(fake: FakeMeili, served: str, env: dict[str, str], rid: str) -> None:
    agents = zip(fake.requests, fake.user_agents, strict=True)
    official = [(m, p) for (m, p, _), ua in agents if ua.startswith("Meilisearch Python")]
    assert ("POST", f"/indexes/{INDEX}/documents?primaryKey=key") in official  # the worker's upsert
    assert ("POST", f"/indexes/{INDEX}/search") in official  # the API's query
    assert len(official) == len(fake.requests)  # nothing but the official client spoke to the engine
    status = httpx.get(f"{served}/api/v1/search/status", timeout=10).json()
    assert status["backend"] == "meilisearch" and status["index"] == INDEX and status["documents"] == 1

    live_before = fake.indexes[INDEX]
    done = subprocess.run([CHM, "reindex"], env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    assert "reindexed 1 documents" in done.stderr
    swaps = [b for m, p, b in fake.requests if p == "/swap-indexes"]
    assert len(swaps) == 1 and swaps[0][0]["indexes"][0] == INDEX
    assert fake.indexes[INDEX] is not live_before  # a new index object is live under the same name ...
    assert list(fake.indexes) == [INDEX]  # ... and the old copy is gone
    assert _search(served, "pollinator") == [rid]  # the running server answers from the swapped-in index
