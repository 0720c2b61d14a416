"""Search latency through the Meilisearch adapter: p50/p95 under 32 concurrent searches against the loopback fake.

    .venv/bin/python bench/meili.py                       # old vs new, 3 rounds of 10 s each, medians
    .venv/bin/python bench/meili.py --query-threads 4 8 16 --rounds 5   # the new adapter's pool size too
    .venv/bin/python bench/meili.py --concurrency 1       # one search at a time: the per-call overhead
    .venv/bin/python bench/meili.py --only new            # just the current adapter

The fake Meilisearch (`tests/search/meili_fake.py`) runs in its own process (uvicorn, uvloop, httptools) so it does
not share the adapter's interpreter; every variant gets its own index with the same documents and the same query
mix, then `--concurrency` asyncio tasks search back to back for `--duration` seconds. What differs is only the
adapter: "old" is the hand-written httpx adapter this project used before adopting the official client, loaded
from git history (`--old-ref`); "new" is `app/search/meili.py` as it is now. The fake's own time per search is
the same for all; compare the variants with each other, not with a real engine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.search.backend import SearchBackend, SearchQuery  # noqa: E402

OLD_REF = "b258c76"  # the last commit with the httpx adapter
QUERIES = [
    SearchQuery(q="biodiversity", facets=("type", "party")),
    SearchQuery(q="forest", party="BR"),
    SearchQuery(q="oceans", lang="fr", limit=10),
    SearchQuery(q="", kind="record", facets=("type",)),
    SearchQuery(q="wetland restoration", type="news"),
]
WORDS = ["biodiversity", "forest", "oceans", "wetland", "restoration", "pollinators", "coral", "mangrove"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def documents(n: int) -> list[dict[str, Any]]:
    parties, types = ["BR", "FR", "CA", "KE"], ["news", "resource", "event"]
    return [{"key": f"record-{i}", "kind": "record", "id": str(i), "uid": f"CHM-RES-BR-{i:06d}-1",
             "party": parties[i % 4], "type": types[i % 3], "revision": 1,
             "title": {"en": f"{WORDS[i % 8].title()} note {i}", "fr": f"Note {i} sur {WORDS[(i + 3) % 8]}"},
             "summary": {"en": f"About {WORDS[(i + 1) % 8]} and {WORDS[(i + 2) % 8]}."}, "text": {},
             "keywords": [], "subjects": [], "gbf_targets": [], "languages": ["en", "fr"],
             "date": f"2025-01-{1 + i % 28:02d}", "updated_at": "2025-01-02T00:00:00+00:00"}
            for i in range(n)]  # fmt: skip


def load_old(ref: str) -> Any:
    """The adapter as it was at `ref`, imported as a throw-away module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:app/search/meili.py"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp(prefix="chm-bench-")) / "meili_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("meili_old", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MeiliBackend


async def run_variant(backend: SearchBackend, docs: list[dict[str, Any]], concurrency: int, duration: float,
                      warmup: float) -> dict[str, Any]:  # fmt: skip
    await backend.upsert(docs)
    for q in QUERIES:  # the documents are there and parse
        assert (await backend.search(q)).hits, q
    latencies: list[float] = []
    stop = time.monotonic() + warmup + duration
    measure_from = time.monotonic() + warmup

    async def client(n: int) -> None:
        i = n
        while True:
            q = QUERIES[i % len(QUERIES)]
            i += 1
            t0 = time.monotonic()
            await backend.search(q)
            t1 = time.monotonic()
            if t1 > stop:
                return
            if t0 >= measure_from:
                latencies.append((t1 - t0) * 1000)

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return {"requests": len(latencies), "rps": round(len(latencies) / duration, 1),
            "p50_ms": round(statistics.median(latencies), 2), "p95_ms": round(pct(latencies, 95), 2),
            "p99_ms": round(pct(latencies, 99), 2), "max_ms": round(max(latencies), 2)}  # fmt: skip


async def main_async(args: argparse.Namespace, url: str) -> dict[str, Any]:
    docs = documents(args.docs)
    results: dict[str, Any] = {}
    variants: list[tuple[str, Any]] = []
    if args.only in (None, "old"):
        variants.append(("old: httpx.AsyncClient, hand-written REST", load_old(args.old_ref)))
    if args.only in (None, "new"):
        from app.search.meili import MeiliBackend

        for threads in args.query_threads:
            label = f"new: official client, {threads} query threads"
            variants.append((label, functools.partial(MeiliBackend, query_threads=threads)))
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in variants}
    for r in range(args.rounds):  # rotate the order each round: a shared machine's load drifts
        for n, (label, cls) in enumerate(variants[r % len(variants) :] + variants[: r % len(variants)]):
            backend = cls(url, "masterKey", index=f"bench_{r}_{n}_{int(time.time())}")
            try:
                runs[label].append(await run_variant(backend, docs, args.concurrency, args.duration, args.warmup))
            finally:
                await backend.close()
            print(f"round {r + 1} {label:46} " + "  ".join(f"{k} {v}" for k, v in runs[label][-1].items()), flush=True)
    for label, rs in runs.items():
        results[label] = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
    if args.rounds > 1:
        print(f"medians over {args.rounds} rounds:")
        for label, res in results.items():
            print(f"  {label:46} " + "  ".join(f"{k} {v}" for k, v in res.items()))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=300, help="documents in each variant's index")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per variant")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=3, help="rounds, variant order rotated; medians reported")
    p.add_argument("--only", choices=["old", "new"])
    p.add_argument("--query-threads", type=int, nargs="+", default=[16], help="new adapter's search pool size(s)")
    p.add_argument("--old-ref", default=OLD_REF, help="git revision holding the old adapter")
    args = p.parse_args()
    fake = subprocess.Popen([sys.executable, "-m", "tests.search.meili_fake", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().split()[-1]
        print(f"fake Meilisearch at {url}; {args.concurrency} concurrent searches, {args.duration:.0f} s each, "
              f"{args.docs} documents; load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        results = asyncio.run(main_async(args, url))
    finally:
        fake.terminate()
        fake.wait(10)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out / f"meili-{stamp}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
