"""`make bench`: chm-api against a plain Starlette + asyncpg + orjson baseline, side by side, same data.

One run: a throw-away embedded PostgreSQL (or BENCH_DATABASE_URL), migrations, generated records, the
baseline and chm-api each as one uvicorn worker on loopback, then wrk against each in turn. Results are
ratios to the baseline (absolute numbers drift from machine to machine); see bench/README.md.

    .venv/bin/python bench/run.py                     # 10,000 records, REST (+ GraphQL if present)
    .venv/bin/python bench/run.py --scale             # + list page at 10,000 vs 1,000,000 records
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import datagen  # noqa: E402  (bench/ is not a package)

# The GraphQL page compared with REST: the same 50 records and fields (full lstrings via the *I18n fields).
# Adjust it here (or pass --graphql-query FILE) when the schema changes.
GRAPHQL_QUERY = """
query BenchRecords {
  records(first: 50) {
    edges {
      node {
        id uid partyCode type status revision titleI18n summaryI18n bodyI18n languages
        links { url name language }
        keywords subjects gbfTargets aichiTargets countries publicationDate externalId
        createdAt updatedAt publishedAt withdrawnAt draftStatus draftUpdatedAt
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# SPEC section 9 (issue 16's targets).
TARGET_REST_RPS = 0.60  # uncached REST req/s >= 60 % of the baseline's
TARGET_REST_P99 = 2.0  # uncached REST p99 <= 2x the baseline's
TARGET_GRAPHQL_RPS = 0.35  # GraphQL req/s >= 35 % of REST's
TARGET_ZIPF_RPS = 2.0  # cached chm-api on the Zipf mix >= 2x the (uncached) baseline on the same mix
TARGET_SCALE = 1.2  # list page at 1M records <= 1.2x its time at 10k
TARGET_RSS_MB = 250.0  # one API process after the whole benchmark

DEFAULT_RECORDS = 10_000
DEFAULT_SCALE_RECORDS = 1_000_000
ZIPF_URLS = 1000
ZIPF_S = 1.0  # the exponent: the k-th most popular URL is asked 1/k as often as the first
ZIPF_SEQUENCE = 20_000  # pre-drawn request order (wrk threads walk it from different offsets)
LIST_PATH = "/api/v1/records?limit=50"
# Wide enough for the tables when stdout is not a terminal (make, CI logs).
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


@dataclass
class Load:
    """One load-test result."""

    target: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    tool: str = "wrk"


@dataclass
class Server:
    """A uvicorn process on a loopback port."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- infrastructure -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str | None:
    """The wrk binary, installed with apt-get when missing and we are root; None means: use the fallback."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        err.print(
            "[yellow]wrk is not installed and I cannot install it (not root or no apt-get).[/]\n"
            "  Install it with: sudo apt-get install -y wrk\n"
            "  Falling back to the (much slower) built-in Python load generator."
        )
        return None
    err.print("[cyan]wrk not found: installing it with apt-get (apt-get install -y wrk)...[/]")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, env=env).returncode == 0
    if not ok:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        ok = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, env=env).returncode == 0
    path = shutil.which("wrk")
    if not ok or not path:
        err.print("[yellow]apt-get could not install wrk; falling back to the built-in Python load generator.[/]")
        return None
    return path


def database(tmp: Path) -> tuple[str, bool]:
    """The database URL (BENCH_DATABASE_URL, or a fresh embedded PostgreSQL) and whether it is embedded."""
    from app import db

    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url, False
    return db.start_embedded(tmp / "pg", database="chm_bench", cleanup="delete"), True


def start_server(name: str, app: str, port: int, env: dict[str, str], tmp: Path, app_dir: Path | None = None) -> Server:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if app_dir:
        cmd += ["--app-dir", str(app_dir)]
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, port, proc, log)


def wait_ready(server: Server, timeout: float = 60.0) -> httpx.Response | None:
    """Wait until the server answers the list page; return the last response (None if it never answered)."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return last
        try:
            last = httpx.get(server.base + LIST_PATH, timeout=10)
            if last.status_code == 200:
                return last
            if last.status_code >= 400:  # answered, but with an error: retrying rarely helps; give it 3 s
                deadline = min(deadline, time.monotonic() + 3)
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return last


def describe_failure(server: Server, resp: httpx.Response | None) -> str:
    if server.proc.poll() is not None:
        return f"{server.name} exited with code {server.proc.returncode}:\n{server.log_tail()}"
    if resp is None:
        return f"{server.name} did not answer on {server.base} in time:\n{server.log_tail()}"
    return (
        f"{server.name} answered {resp.status_code} on {LIST_PATH}: {resp.text[:800]}\n"
        f"server log tail:\n{server.log_tail()}"
    )


def compare_pages(base: httpx.Response, api: httpx.Response) -> str:
    """Check that the two servers serve the same page (a fair comparison needs the same work)."""
    a, b = base.json(), api.json()
    if a == b:
        return "identical JSON"
    notes = []
    ids_a = [i.get("id") for i in a.get("items", [])]
    ids_b = [i.get("id") for i in b.get("items", [])] if isinstance(b, dict) else []
    notes.append("same records in the same order" if ids_a == ids_b else "DIFFERENT records or order")
    if a.get("items") and isinstance(b, dict) and b.get("items"):
        ka, kb = set(a["items"][0]), set(b["items"][0])
        if ka != kb:
            notes.append(f"fields only in baseline: {sorted(ka - kb)}; only in chm-api: {sorted(kb - ka)}")
        diff = [k for k in ka & kb if a["items"][0][k] != b["items"][0][k]]
        if diff:
            notes.append(f"values differ in {sorted(diff)}")
    if isinstance(b, dict) and (a.get("next_cursor") is None) != (b.get("next_cursor") is None):
        notes.append("next_cursor presence differs")
    return "; ".join(notes)


# -- load generation ------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(target: str, out: str) -> Load:
    """Requests/s and the latency distribution from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.MULTILINE)}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return Load(target, rps, pct.get(50, 0.0), pct.get(90, 0.0), pct.get(99, 0.0), total, errors)


def run_wrk(
    wrk: str,
    target: str,
    url: str,
    args: argparse.Namespace,
    duration: float,
    body: str | None,
    tmp: Path,
    script: Path | None = None,
) -> Load:
    cmd = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if body is not None:
        script = tmp / "post.lua"
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n'
        )
        cmd += ["-s", str(script)]
    elif script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    return parse_wrk(target, out.stdout)


async def _py_load(
    target: str, url: str, conns: int, duration: float, body: str | None, paths: list[str] | None = None
) -> Load:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                n += 1
                try:
                    if paths:
                        r = await client.get(url + paths[n % len(paths)])
                    elif body is None:
                        r = await client.get(url)
                    else:
                        r = await client.post(url, content=body, headers={"content-type": "application/json"})
                    ok = r.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker(i * 7919) for i in range(conns)))
        elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Load(target, len(latencies) / elapsed, q[49], q[89], q[98], len(latencies), errors, tool="python")


def load(
    wrk: str | None,
    target: str,
    url: str,
    args: argparse.Namespace,
    tmp: Path,
    *,
    duration: float,
    body: str | None = None,
    script: Path | None = None,
    paths: list[str] | None = None,
) -> Load:
    """One load run: wrk (with `script` for a URL mix), or the Python fallback (cycling through `paths`)."""
    if wrk:
        return run_wrk(wrk, target, url, args, duration, body, tmp, script)
    return asyncio.run(_py_load(target, url, args.connections, duration, body, paths))


# -- GraphQL probe --------------------------------------------------------------------------------------------


def graphql_body(args: argparse.Namespace) -> str:
    query = Path(args.graphql_query).read_text() if args.graphql_query else GRAPHQL_QUERY
    return json.dumps({"query": query}, separators=(",", ":"))


def probe_graphql(api: Server, body: str, rest_ids: list[str] | None = None) -> str | None:
    """None when the query works and answers the REST page's records; otherwise why GraphQL is skipped."""
    try:
        r = httpx.post(api.base + "/graphql", content=body, headers={"content-type": "application/json"}, timeout=30)
    except httpx.HTTPError as exc:
        return f"request failed: {exc}"
    if r.status_code == 404:
        return "no /graphql endpoint on chm-api (404)"
    try:
        data = r.json()
    except ValueError:
        return f"HTTP {r.status_code}, not JSON: {r.text[:200]}"
    if data.get("errors"):
        return f"HTTP {r.status_code}, query error: {data['errors'][0].get('message', data['errors'][0])}"
    if r.status_code != 200 or not isinstance(data.get("data"), dict):
        return f"HTTP {r.status_code}: {r.text[:200]}"
    edges = ((data["data"].get("records") or {}).get("edges")) or []
    if len(edges) != 50:
        return f"the query answered {len(edges)} records, not 50"
    if rest_ids is not None and [str((e.get("node") or {}).get("id")) for e in edges] != rest_ids:
        return "DIFFERENT records or order than the REST page"
    return None


# -- scale check ----------------------------------------------------------------------------------------------


def deep_cursor(url: str, depth: int) -> str:
    """The cursor chm-api would issue after `depth` published records (built with the app's own encoder)."""
    import asyncpg

    from app.services import paging
    from app.services.records import DEFAULT_SORT, SORTS

    async def fetch() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchrow(
                "SELECT updated_at, id FROM records WHERE status = 'published' "
                "ORDER BY updated_at DESC, id DESC OFFSET $1 LIMIT 1",
                depth - 1,
            )
        finally:
            await conn.close()

    row = asyncio.run(fetch())
    return paging.encode_cursor(SORTS[DEFAULT_SORT], (row["updated_at"], row["id"]))


def time_page(url: str, n: int, budget_s: float) -> dict[str, float]:
    """Sequential requests over one keep-alive connection (n of them, or fewer if `budget_s` runs out, min 10)."""
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    with httpx.Client(timeout=60) as client:
        for _ in range(3):  # warm the connection and the plan cache
            client.get(url).raise_for_status()
        while len(samples) < n and (len(samples) < 10 or time.perf_counter() < deadline):
            t0 = time.perf_counter()
            client.get(url).raise_for_status()
            samples.append((time.perf_counter() - t0) * 1000)
    q = statistics.quantiles(samples, n=20)
    return {"median_ms": round(statistics.median(samples), 3), "p95_ms": round(q[18], 3), "requests": len(samples)}


def measure_pages(servers: list[Server], url: str, published: int, n: int, budget_s: float) -> dict[str, Any]:
    cursor = deep_cursor(url, published // 2)
    out: dict[str, dict[str, Any]] = {}
    for s in servers:
        out[s.name] = {
            "first": time_page(s.base + LIST_PATH, n, budget_s),
            "deep": time_page(s.base + f"{LIST_PATH}&cursor={cursor}", n, budget_s),
        }
    return out


def count_published(url: str) -> int:
    import asyncpg

    async def fetch() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM records WHERE status = 'published'"))
        finally:
            await conn.close()

    return asyncio.run(fetch())


# -- the Zipf mix -----------------------------------------------------------------------------------------------


def zipf_paths(url: str, n: int, seed: int = 16) -> list[str]:
    """`n` distinct anonymous read URLs, most popular first: list variants (limit, party, type, pages 1-3 by
    cursor) and single records, shuffled together (seeded) so both kinds sit at every popularity."""
    import random

    import asyncpg

    from app.services import paging
    from app.services.records import DEFAULT_SORT, SORTS

    sort = SORTS[DEFAULT_SORT]

    async def build() -> tuple[list[str], list[str]]:
        conn = await asyncpg.connect(url)
        try:
            parties = [
                r[0]
                for r in await conn.fetch(
                    "SELECT party FROM records WHERE status = 'published' GROUP BY 1 ORDER BY count(*) DESC LIMIT 6"
                )
            ]
            types = [
                r[0]
                for r in await conn.fetch(
                    "SELECT type FROM records WHERE status = 'published' GROUP BY 1 ORDER BY count(*) DESC LIMIT 4"
                )
            ]
            lists: list[str] = []
            for limit in (10, 20, 50, 100):
                for party in (None, *parties):
                    for rtype in (None, *types):
                        where, args = ["status = 'published'"], []
                        for col, val in (("party", party), ("type", rtype)):
                            if val is not None:
                                args.append(val)
                                where.append(f"{col} = ${len(args)}")
                        query = "&".join(
                            f"{k}={v}"
                            for k, v in (("limit", limit), ("party", party), ("type", rtype))
                            if v is not None
                        )
                        lists.append(f"{LIST_PATH.split('?')[0]}?{query}")
                        for page in (2, 3):
                            row = await conn.fetchrow(
                                f"SELECT updated_at, id FROM records WHERE {' AND '.join(where)} "
                                f"ORDER BY updated_at DESC, id DESC OFFSET ${len(args) + 1} LIMIT 1",
                                *args,
                                (page - 1) * limit - 1,
                            )
                            if row is None:
                                break
                            cursor = paging.encode_cursor(sort, (row["updated_at"], row["id"]))
                            lists.append(f"{lists[-1].split('&cursor=')[0]}&cursor={cursor}")
            singles = [
                f"/api/v1/records/{r[0]}"
                for r in await conn.fetch(
                    "SELECT id FROM records WHERE status = 'published' ORDER BY md5(id::text) LIMIT $1", n
                )
            ]
            return lists, singles
        finally:
            await conn.close()

    lists, singles = asyncio.run(build())
    rng = random.Random(seed)
    rng.shuffle(lists)
    n_lists = min(len(lists), int(n * 0.4))
    paths = lists[:n_lists] + singles[: n - n_lists]
    rng.shuffle(paths)
    return paths


def zipf_script(paths: list[str], tmp: Path, seed: int = 16) -> tuple[Path, list[str]]:
    """A wrk lua script walking a pre-drawn Zipf sequence over `paths` (each thread from its own offset);
    also the sequence itself as paths (for the Python fallback)."""
    import random

    weights = [1.0 / (k**ZIPF_S) for k in range(1, len(paths) + 1)]
    seq = random.Random(seed).choices(range(len(paths)), weights=weights, k=ZIPF_SEQUENCE)
    lua = [
        "local paths = {" + ",".join(f"[==[{p}]==]" for p in paths) + "}",
        "local seq = {" + ",".join(str(i + 1) for i in seq) + "}",
        "local reqs = {}",
        "local i = 0",
        "local threads = 0",
        "function setup(thread) thread:set('offset', threads * 7919); threads = threads + 1 end",
        "function init(args)",
        "  for k, p in ipairs(paths) do reqs[k] = wrk.format('GET', p) end",
        "  i = offset or 0",
        "end",
        "function request()",
        "  i = i + 1",
        "  if i > #seq then i = 1 end",
        "  return reqs[seq[i]]",
        "end",
    ]
    script = tmp / "zipf.lua"
    script.write_text("\n".join(lua) + "\n")
    return script, [paths[i] for i in seq]


def compare_mix(servers: list[Server], paths: list[str], sample: int = 60) -> tuple[int, list[str]]:
    """GET a sample of the mix (the most popular URLs and a spread of the rest) from every server: how many were
    compared, and what differed (status or JSON)."""
    picked = list(dict.fromkeys(paths[: sample // 2] + paths[:: max(1, len(paths) // (sample // 2))]))
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=s.base, timeout=30)) for s in servers]
        for path in picked:
            answers = [c.get(path) for c in clients]
            ref = answers[0]
            for server, r in zip(servers[1:], answers[1:], strict=True):
                if r.status_code != 200 or ref.status_code != 200:
                    problems.append(f"{path}: {servers[0].name} {ref.status_code}, {server.name} {r.status_code}")
                elif r.json() != ref.json():
                    problems.append(f"{path}: {server.name}'s JSON differs from {servers[0].name}'s")
    return len(picked), problems


# -- connections held during a load --------------------------------------------------------------------------


APP_NAMES = {"baseline": "chm-bench-baseline"}  # application_name of each server's connections (else chm-api)


class ConnectionWatch:
    """The peak number of database connections per application_name (pg_stat_activity, every 0.2 s) while a load
    runs. Both chm-api processes connect as `chm-api`: their peak is the two together."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peak: dict[str, int] = {}
        self._stop = False
        self._thread: Any = None

    async def _poll(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url, server_settings={"application_name": "chm-bench-watch"})
        try:
            while not self._stop:
                rows = await conn.fetch(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() GROUP BY 1"
                )
                for name, n in rows:
                    self.peak[name] = max(self.peak.get(name, 0), n)
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    def __enter__(self) -> ConnectionWatch:
        import threading

        self._thread = threading.Thread(target=lambda: asyncio.run(self._poll()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop = True
        self._thread.join()


# -- reporting ------------------------------------------------------------------------------------------------


def verdict(status: str | bool | None) -> str:
    if isinstance(status, bool) or status is None:
        status = {True: "PASS", False: "FAIL", None: "n/a"}[status]
    return {"PASS": "[bold green]PASS[/]", "FAIL": "[bold red]FAIL[/]", "INVALID": "[bold magenta]INVALID[/]"}.get(
        status, f"[dim]{status}[/]"
    )


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def settle(servers: list[Server], *, idle: float = 0.05, timeout: float = 15.0) -> float:
    """Wait until every server process is idle (CPU below `idle` of one core over 0.5 s): a run must not start
    while the previous target's backlog is still being worked off in the same process. Returns the wait."""
    import psutil

    start = time.monotonic()
    procs = [psutil.Process(s.proc.pid) for s in servers if s.proc.poll() is None]
    while time.monotonic() - start < timeout:
        before = [p.cpu_times() for p in procs]
        time.sleep(0.5)
        used = max((sum(p.cpu_times()[:2]) - sum(b[:2]) for p, b in zip(procs, before, strict=True)), default=0.0)
        if used / 0.5 < idle:
            break
    return time.monotonic() - start


def median_load(runs: list[Load]) -> Load:
    if len(runs) == 1:
        return runs[0]
    pick = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
    return Load(
        pick.target,
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p90_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.requests for r in runs),
        sum(r.errors for r in runs),
        pick.tool,
    )


ROWS = {  # target name → (label, what its req/s ratio is taken against)
    "baseline": ("baseline (Starlette+asyncpg+orjson) GET /api/v1/records?limit=50", None),
    "rest": ("chm-api REST, same URL, CHM_RESPONSE_CACHE=false", "baseline"),
    "graphql": ("chm-api GraphQL records(first: 50), same page", "rest"),
    "zipf_baseline": ("baseline, Zipf mix of the anonymous URLs", None),
    "zipf": ("chm-api, same Zipf mix, CHM_RESPONSE_CACHE=true", "zipf_baseline"),
}


def print_report(results: dict[str, Any]) -> None:
    checks = results["checks"]
    if results["load"]:
        w = results["wrk"]
        table = Table(
            title=f"Throughput — {results['records']:,} records, wrk -t{w['threads']} -c{w['connections']} "
            f"-d{w['duration_s']:.0f}s, {w['rounds']} round(s)"
        )
        for col in ("target", "req/s", "p50 ms", "p99 ms", "errors", "peak DB conns*", "req/s ratio", "p99 ratio"):
            table.add_column(col, justify="left" if col == "target" else "right")
        for name, (label, against) in ROWS.items():
            r = results["load"].get(name)
            if not r:
                continue
            ref = results["load"].get(against) if against else None
            table.add_row(
                label,
                f"{r['rps']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                str(r["errors"]),
                str(results.get("db_connections", {}).get(name, "")),
                f"{r['rps'] / ref['rps']:.2f} of {against}" if ref else "1.00",
                f"{r['p99_ms'] / ref['p99_ms']:.2f}" if ref else "1.00",
            )
        console.print(table)
    if results.get("scale"):
        print_scale_table(results["scale"])
    if results.get("extra"):
        import extra

        for key, res in results["extra"].items():
            if key.startswith("search_"):
                extra.print_search(res, res["setup"]["documents"])
    ct = Table(title="SPEC §9 checks")
    for col in ("check", "measured", "target", "verdict"):
        ct.add_column(col)
    for name, c in checks.items():
        ct.add_row(name, c["display"], c["target"], verdict(c["status"]))
    console.print(ct)
    for area, why in results["invalid"].items():
        console.print(f"[bold magenta]INVALID[/] {area}: {'; '.join(why)}")
    for note in results["notes"]:
        console.print(f"[dim]• {note}[/]")


def print_scale_table(sc: dict[str, Any]) -> None:
    st = Table(
        title=f"Scale: list page at {sc['small']:,} vs {sc['large']:,} published records (measured) "
        f"(up to {sc['requests']} sequential requests per page and size)"
    )
    for col in (
        "server",
        "page",
        f"median ms @ {sc['small']:,}",
        f"median ms @ {sc['large']:,}",
        "ratio",
        "p95 ms small → large",
        "target",
    ):
        st.add_column(col, justify="left" if col in ("server", "page", "target") else "right")
    for name, pages in sc["ratios"].items():
        for page, r in pages.items():
            s_small, s_large = sc["at_small"][name][page], sc["at_large"][name][page]
            st.add_row(
                name,
                page,
                f"{s_small['median_ms']:.2f}",
                f"{s_large['median_ms']:.2f}",
                f"{r:.2f}",
                f"{s_small['p95_ms']:.2f} → {s_large['p95_ms']:.2f}",
                f"≤ {TARGET_SCALE}×" if name == "chm-api" else "reference",
            )
    console.print(st)


def _md_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


# Where each target that can be missed is analysed (profile, cost breakdown, what was tried), for RESULTS.md.
MISS_EXPLAINED = {
    "bulk": "the cost of a batch by statement and index, what was tried and the levers left: `bench/README.md`, "
    '"What a bulk batch costs"',
    "search": '`docs/search.md`, "Engines" (the three ways the PostgreSQL backend finds candidates) and '
    '`bench/README.md`, "Search, bulk publish and lag"',
    "rest": '`bench/README.md`, "Reading the table" (p99 is queueing plus stalls)',
    "graphql": '`bench/README.md`, "What each benchmark measures"',
}


def _miss_key(check: str) -> str:
    name = check.lower()
    return next((k for k in ("bulk", "search", "graphql", "rest") if k in name), "")


def write_results_md(results: dict[str, Any], path: Path) -> None:
    """The committed record of a run (bench/RESULTS.md): machine, command, every check, the figures behind them."""
    m, checks = results["machine"], results["checks"]
    counts = {k: sum(1 for c in checks.values() if c["status"] == k) for k in ("PASS", "FAIL", "INVALID")}
    la0, la1 = m.get("loadavg_start") or (0, 0, 0), m.get("loadavg_end") or (0, 0, 0)
    out = ["# Benchmark results", ""]
    if results["smoke"]:
        out += [
            f"> **SMOKE RUN at reduced sizes** ({results['smoke']}): it shows that the harness works, not "
            "the performance of chm-api. The authoritative figures come from `make bench` "
            "(`bench/run.py --full --write-results`) on a quiet machine, which replaces this file.",
            "",
        ]
    out += [
        f"- **Date**: {results['started_at'][:19].replace('T', ' ')} UTC → {results['finished_at'][11:19]} UTC "
        f"({results['minutes']:.1f} min)",
        f"- **Command**: `{results['command']}`",
        f"- **Commit**: `{results.get('commit', '?')}`",
        f"- **Machine**: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; load average "
        f"{la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f} before, {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f} after",
        f"- **Fairness**: {results['fairness']}",
        f"- **Verdict**: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['INVALID']} INVALID",
        "",
        "## Checks (SPEC §9)",
        "",
        _md_row(["check", "measured", "target", "verdict"]),
        _md_row(["---"] * 4),
    ]
    out += [_md_row([name, c["display"], c["target"], f"**{c['status']}**"]) for name, c in checks.items()]
    if results["invalid"]:
        out += ["", "Invalid measurements (the run says so and exits non-zero):", ""]
        out += [f"- **{area}**: {'; '.join(why)}" for area, why in results["invalid"].items()]
    if results["load"]:
        w = results["wrk"]
        out += [
            "",
            f"## Throughput ({results['records']:,} records; `wrk -t{w['threads']} -c{w['connections']} "
            f"-d{w['duration_s']:.0f}s`, {w['rounds']} round(s), {w['warmup_s']:.0f} s warm-up each)",
            "",
            _md_row(
                [
                    "target",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "failed requests",
                    "peak DB connections*",
                    "req/s ratio",
                    "p99 ratio",
                ]
            ),
            _md_row(["---"] * 8),
        ]
        for name, (label, against) in ROWS.items():
            r = results["load"].get(name)
            if not r:
                continue
            ref = results["load"].get(against) if against else None
            out.append(
                _md_row(
                    [
                        label,
                        f"{r['rps']:,.0f}",
                        f"{r['p50_ms']:.1f}",
                        f"{r['p99_ms']:.1f}",
                        r["errors"],
                        results.get("db_connections", {}).get(name, ""),
                        f"{r['rps'] / ref['rps']:.2f} × {against}" if ref else "1.00",
                        f"{r['p99_ms'] / ref['p99_ms']:.2f}" if ref else "1.00",
                    ]
                )
            )
        out.append(
            "\n\\* peak connections to PostgreSQL during the load, sampled every 0.2 s from pg_stat_activity; "
            "the two chm-api processes (cache off, cache on) share one application_name, so their figure is "
            "both together."
        )
        if results.get("zipf"):
            z = results["zipf"]
            out += [
                "",
                f"Zipf mix: {z['urls']:,} distinct URLs ({z['lists']} list pages — limit 10/20/50/100, "
                f"party, type, pages 1-3 by cursor — and {z['singles']} single records), exponent {ZIPF_S}, "
                f"{ZIPF_SEQUENCE:,} pre-drawn requests; {z['compared']} URLs compared across servers: "
                f"{'identical' if not z['problems'] else str(len(z['problems'])) + ' differ'}.",
            ]
    if sc := results.get("scale"):
        out += [
            "",
            f"## Scale: list page at {sc['small']:,} vs {sc['large']:,} published records (measured)",
            "",
            _md_row(
                [
                    "server",
                    "page",
                    f"median ms @ {sc['small']:,}",
                    f"median ms @ {sc['large']:,}",
                    "ratio",
                    "p95 ms small → large",
                    "requests",
                ]
            ),
            _md_row(["---"] * 7),
        ]
        for name, pages in sc["ratios"].items():
            for page, r in pages.items():
                a, b = sc["at_small"][name][page], sc["at_large"][name][page]
                out.append(
                    _md_row(
                        [
                            name,
                            page,
                            f"{a['median_ms']:.2f}",
                            f"{b['median_ms']:.2f}",
                            f"{r:.2f}",
                            f"{a['p95_ms']:.2f} → {b['p95_ms']:.2f}",
                            f"{a['requests']} / {b['requests']}",
                        ]
                    )
                )
        if sc.get("datagen"):
            g = sc["datagen"]
            out.append(f"\nGrowing the data: {g['added']:,} records in {g['seconds']:.0f} s.")
    for key, res in (results.get("extra") or {}).items():
        if key.startswith("search_"):
            setup = res["setup"]
            out += [
                "",
                f"## Search, PostgreSQL backend: {setup['documents']:,} documents, {res['queries']} "
                f"sequential queries (p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms, "
                f"max {res['max_ms']:.1f} ms)",
                "",
                _md_row(["query", "kind", "filters", "median ms", "max ms", "est. total", "hits", "answer"]),
                _md_row(["---"] * 8),
            ]
            for r in res["per_query"]:
                out.append(
                    _md_row(
                        [
                            f"`{r['q']}`",
                            r["label"],
                            r["filters"],
                            f"{r['median_ms']:.1f}",
                            f"{r['max_ms']:.1f}",
                            f"{r['estimated_total']:,}",
                            r["hits"],
                            r.get("problem") or "as expected",
                        ]
                    )
                )
            if rx := setup.get("reindex"):
                out.append(
                    f"\nIndexing: {rx['documents']:,} documents in {rx['seconds']:.0f} s ({rx['docs_per_s']:,}/s)."
                )
    if lag := (results.get("extra") or {}).get("lag"):
        out += [
            "",
            f"## Publish → searchable lag: p50 {lag['p50_ms']:.0f} ms, p95 {lag['p95_ms']:.0f} ms, "
            f"max {lag['max_ms']:.0f} ms ({lag['samples']} samples, {lag['timeouts']} timeouts)",
        ]
    if bulk := (results.get("extra") or {}).get("bulk"):
        out += [
            "",
            f"## Bulk publish: {bulk['records_per_s']:,} records/s ({bulk['records']:,} records in batches "
            f"of {bulk['batch']:,}, {bulk['seconds']:.1f} s; batch median {bulk['batch_ms']['median']:.0f} ms, "
            f"max {bulk['batch_ms']['max']:.0f} ms; {bulk['statuses']})",
        ]
        if cpu := (bulk.get("cpu_ms") or {}).get("median"):
            out += ["", f"API process CPU per batch of {bulk['batch']:,}: median {cpu:.0f} ms (PostgreSQL's own is "
                    "not in it)."]  # fmt: skip
    misses = [name for name, c in checks.items() if c["status"] == "FAIL"]
    if misses:
        out += ["", "## The misses", ""]
        out += [f"- **{name}**: {MISS_EXPLAINED.get(_miss_key(name), 'see bench/README.md')}" for name in misses]
    if results["notes"]:
        out += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    out += [
        "",
        "How to read it and what each row measures: `bench/README.md`. Raw figures of the run: "
        f"`bench/results/{results['json']}` (not committed).",
        "",
    ]
    path.write_text("\n".join(out))


# -- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description="chm-api vs a plain Starlette baseline (SPEC §9)")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="records to generate (default 10,000)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (max 15)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--pool", type=int, default=20, help="database connections per server, both sides")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the measurements, report medians")
    parser.add_argument("--graphql-query", help="file with the GraphQL query (default: GRAPHQL_QUERY in run.py)")
    parser.add_argument("--no-graphql", action="store_true", help="skip the GraphQL comparison")
    parser.add_argument("--no-zipf", action="store_true", help="skip the Zipf mix (response cache)")
    parser.add_argument("--zipf-urls", type=int, default=ZIPF_URLS, help="distinct URLs in the Zipf mix")
    parser.add_argument("--scale", action="store_true", help="also time the list page at 10k vs 1M records")
    parser.add_argument("--scale-records", type=int, default=DEFAULT_SCALE_RECORDS, help="large size for --scale")
    parser.add_argument("--scale-requests", type=int, default=200, help="sequential requests per page and size")
    parser.add_argument("--scale-seconds", type=float, default=30, help="time budget per page and size (min 10 req)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the scale check (with --scale)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="everything in one run: throughput, Zipf, scale, then search at the large size, lag, "
        "bulk on the same database (~40 min at the default sizes)",
    )
    parser.add_argument("--write-results", action="store_true", help="write bench/RESULTS.md (the committed record)")
    parser.add_argument("--bulk-records", type=int, default=20_000, help="--full: records to publish in bulk")
    parser.add_argument("--lag-samples", type=int, default=50, help="--full: publishes timed for the lag")
    parser.add_argument("--search-rounds", type=int, default=10, help="--full: passes over the search query set")
    for flag in ("--search", "--bulk", "--lag"):  # handled by bench/extra.py (its own database and report)
        parser.add_argument(flag, action="store_true", help=f"run bench/extra.py {flag} instead (see its --help)")
    args, extra_argv = parser.parse_known_args(argv)
    if args.full:
        args.scale = True
        args.skip_throughput = False
    elif extra_argv and not (args.search or args.bulk or args.lag):
        parser.error(f"unrecognized arguments: {' '.join(extra_argv)}")
    args.duration = min(args.duration, 15.0)
    return args, extra_argv


def smoke_reasons(args: argparse.Namespace) -> str:
    """Why this run is not the authoritative one ('' when it is: --full at the default sizes)."""
    why = []
    if not args.full:
        why.append("not --full")
    if args.records != DEFAULT_RECORDS:
        why.append(f"{args.records:,} records, not {DEFAULT_RECORDS:,}")
    if args.scale_records < DEFAULT_SCALE_RECORDS:
        why.append(f"scale and search at {args.scale_records:,}, not {DEFAULT_SCALE_RECORDS:,}")
    if args.duration < 10 or args.warmup < 3:
        why.append(f"{args.duration:.0f} s loads after {args.warmup:.0f} s warm-up (not 10 s / 3 s)")
    if args.full and (args.bulk_records < 20_000 or args.lag_samples < 50 or args.search_rounds < 10):
        why.append("fewer bulk records, lag samples or search rounds than the defaults")
    return "; ".join(why)


def main(argv: list[str] | None = None) -> int:
    args, extra_argv = parse_args(argv)
    if (args.search or args.bulk or args.lag) and not args.full:
        import extra

        flags = [f"--{k}" for k in ("search", "bulk", "lag") if getattr(args, k)]
        return extra.main(flags + extra_argv)
    # One signing secret for the servers and this process: cursors made here (deep page, Zipf mix) are theirs too.
    os.environ["CHM_SECRET_KEY"] = os.environ.get("BENCH_SECRET_KEY") or secrets.token_urlsafe(48)

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # registered first, so it runs after PostgreSQL has stopped
    notes: list[str] = []
    invalid: dict[str, list[str]] = {}
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "command": " ".join([".venv/bin/python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "commit": _git_commit(),
        "records": args.records,
        "smoke": smoke_reasons(args),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
        },
        "fairness": f"both servers one uvicorn worker (uvloop, httptools, no access log), {args.pool} pooled "
        "database connections each and no overflow (CHM_DB_POOL_SIZE, CHM_DB_MAX_OVERFLOW=0), the same data, "
        "the same signed cursors",
        "load": {},
        "checks": {},
        "invalid": invalid,
        "notes": notes,
    }
    load1 = results["machine"]["loadavg_start"]
    if load1 and load1[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(
            f"machine busy at start (load average {load1[0]:.1f} on {os.cpu_count()} CPUs): "
            "absolute figures are noisy; ratios less so"
        )

    wrk = ensure_wrk() if not args.skip_throughput else shutil.which("wrk")
    if not wrk and not args.skip_throughput:
        notes.append(
            "wrk unavailable: used the built-in Python load generator (it saturates before the servers "
            "do, so ratios are compressed towards 1)"
        )

    from app import db

    with console.status("starting PostgreSQL and migrating..."):
        url, _ = database(tmp)
        db.migrate(url)
    existing = count_published(url)
    if existing < args.records:
        console.print(f"generating {args.records - existing:,} records...")
        gen = asyncio.run(datagen.generate(url, args.records - existing))
        results["datagen"] = gen
        console.print(f"  {gen['added']:,} records in {gen['seconds']:.1f} s")
    elif existing > args.records:
        notes.append(f"BENCH_DATABASE_URL already holds {existing:,} published records (asked for {args.records:,})")
    results["records"] = count_published(url)

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BENCH_DATABASE_URL": url,
        "CHM_LOG_LEVEL": "WARNING",
        "CHM_DATA_DIR": str(tmp / "chm-data"),
        "CHM_RATE_LIMIT_PER_MINUTE": str(10**9),
        "CHM_INPROCESS_WORKER": "false",
        "CHM_DB_POOL_SIZE": str(args.pool),
        "CHM_DB_MAX_OVERFLOW": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    notes.append(
        "CHM_RATE_LIMIT_PER_MINUTE is raised to 10^9 so every request passes the limiter (its cost "
        "stays in the measurement, its 429s do not)"
    )
    baseline = start_server("baseline", "baseline:app", free_port(), env, tmp, app_dir=BENCH)
    api = start_server("chm-api", "app.main:app", free_port(), {**env, "CHM_RESPONSE_CACHE": "false"}, tmp)
    servers = [baseline, api]
    cached: Server | None = None
    if not args.no_zipf and not args.skip_throughput:
        cached = start_server("chm-api-cached", "app.main:app", free_port(), {**env, "CHM_RESPONSE_CACHE": "true"}, tmp)
        servers.append(cached)
    from app.settings import Settings

    if not any(f.alias == "CHM_DB_MAX_OVERFLOW" for f in Settings.model_fields.values()):
        invalid.setdefault("rest", []).append("chm-api has no CHM_DB_MAX_OVERFLOW: its pool may outgrow the baseline's")
    exit_code = 0
    try:
        exit_code = _measure(args, url, tmp, wrk, results, baseline, api, cached)
        results["rss_mb"] = {
            s.name: round(rss_mb(s.proc.pid), 1) for s in (api, cached) if s is not None and s.proc.poll() is None
        }
    finally:
        for s in servers:
            s.stop()
    if exit_code:
        return exit_code
    results["checks"] = checks(results, args)
    results["machine"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["finished_at"] = datetime.now(UTC).isoformat()
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    results["json"] = out.name
    out.write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    console.print(f"results: {out.relative_to(ROOT)}")
    if args.write_results:
        write_results_md(results, BENCH / "RESULTS.md")
        console.print("written: bench/RESULTS.md" + (" (marked as a smoke run)" if results["smoke"] else ""))
    statuses = {c["status"] for c in results["checks"].values()}
    if "INVALID" in statuses or invalid:
        console.print("[bold magenta]INVALID run[/]: some figures are not a fair measurement (see above)")
        return 3
    return 1 if "FAIL" in statuses else 0


def _git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return out.stdout.strip() + (" (uncommitted changes)" if dirty else "")


def _measure(
    args: argparse.Namespace,
    url: str,
    tmp: Path,
    wrk: str | None,
    results: dict[str, Any],
    baseline: Server,
    api: Server,
    cached: Server | None,
) -> int:
    """Everything with the servers up; 2 if the baseline cannot serve."""
    notes, invalid = results["notes"], results["invalid"]
    servers = [s for s in (baseline, api, cached) if s is not None]
    with console.status("waiting for the servers..."):
        ready = {s.name: wait_ready(s) for s in servers}
    base_resp = ready["baseline"]
    if base_resp is None or base_resp.status_code != 200:
        console.print(f"[bold red]baseline failed[/]: {describe_failure(baseline, base_resp)}")
        return 2
    api_resp = ready["chm-api"]
    api_ok = api_resp is not None and api_resp.status_code == 200
    if not api_ok:
        results["rest_error"] = describe_failure(api, api_resp)
        console.print(f"[bold red]chm-api list page failed[/]: {results['rest_error']}")
        invalid.setdefault("rest", []).append("chm-api did not serve the list page")
    else:
        assert api_resp is not None
        results["same_page"] = compare_pages(base_resp, api_resp)
        notes.append(f"baseline vs chm-api first page: {results['same_page']}")
        if results["same_page"] != "identical JSON":
            invalid.setdefault("rest", []).append(f"the two first pages differ ({results['same_page']})")
    if cached is not None and (ready["chm-api-cached"] is None or ready["chm-api-cached"].status_code != 200):
        invalid.setdefault("zipf", []).append(f"chm-api (cache on) failed: {describe_failure(cached, None)}")
        cached = None

    targets: list[tuple[str, Server, str, str | None, Path | None, list[str] | None]] = []
    targets.append(("baseline", baseline, LIST_PATH, None, None, None))
    if api_ok:
        targets.append(("rest", api, LIST_PATH, None, None, None))
    if not args.no_graphql and api_ok and not args.skip_throughput:
        body = graphql_body(args)
        assert api_resp is not None
        why = probe_graphql(api, body, [i["id"] for i in api_resp.json()["items"]])
        if why is None:
            targets.append(("graphql", api, "/graphql", body, None, None))
        elif why.startswith("DIFFERENT"):
            invalid.setdefault("graphql", []).append(why)
            targets.append(("graphql", api, "/graphql", body, None, None))
        else:
            results["graphql_skipped"] = why
            notes.append(f"GraphQL skipped: {why}")
    if cached is not None:
        with console.status(f"building the Zipf mix of {args.zipf_urls:,} URLs and comparing the servers..."):
            paths = zipf_paths(url, args.zipf_urls)
            script, sequence = zipf_script(paths, tmp)
            compared, problems = compare_mix([baseline, api, cached], paths)
        lists = sum(1 for p in paths if "?" in p)
        results["zipf"] = {
            "urls": len(paths),
            "lists": lists,
            "singles": len(paths) - lists,
            "compared": compared,
            "problems": problems[:20],
        }
        if len(paths) < args.zipf_urls:
            notes.append(f"the Zipf mix has {len(paths):,} distinct URLs (asked for {args.zipf_urls:,})")
        if problems:
            invalid.setdefault("zipf", []).append(
                f"{len(problems)} of {compared} sampled URLs differ, e.g. {problems[0]}"
            )
        targets.append(("zipf_baseline", baseline, "", None, script, sequence))
        targets.append(("zipf", cached, "", None, script, sequence))

    if not args.skip_throughput:
        runs: dict[str, list[Load]] = {}
        peaks: dict[str, int] = {}
        for target, server, path, body, script, seq in targets:
            with console.status(f"warming up {target}..."):
                load(
                    wrk,
                    target,
                    server.base + path,
                    args,
                    tmp,
                    duration=args.warmup,
                    body=body,
                    script=script,
                    paths=seq,
                )
        for rnd in range(args.rounds):
            order = targets[rnd % len(targets) :] + targets[: rnd % len(targets)]  # rotate: no fixed order bias
            for target, server, path, body, script, seq in order:
                settle(servers)
                with (
                    console.status(f"round {rnd + 1}/{args.rounds}: {target} for {args.duration:.0f} s..."),
                    ConnectionWatch(url) as watch,
                ):
                    runs.setdefault(target, []).append(
                        load(
                            wrk,
                            target,
                            server.base + path,
                            args,
                            tmp,
                            duration=args.duration,
                            body=body,
                            script=script,
                            paths=seq,
                        )
                    )
                app_name = APP_NAMES.get(server.name, "chm-api")
                peaks[target] = max(peaks.get(target, 0), watch.peak.get(app_name, 0))
        results["load"] = {k: asdict(median_load(v)) for k, v in runs.items()}
        results["load_rounds"] = {k: [asdict(r) for r in v] for k, v in runs.items()}
        results["db_connections"] = peaks
        area = {"baseline": "rest", "rest": "rest", "graphql": "graphql", "zipf_baseline": "zipf", "zipf": "zipf"}
        for name, r in results["load"].items():
            if r["errors"]:
                invalid.setdefault(area[name], []).append(
                    f"{name}: {r['errors']} failed requests (non-2xx or socket errors) of {r['requests']:,}"
                )
        api_processes = 1 + (cached is not None)
        for name, peak in peaks.items():
            # chm-api: each process its pool plus a listener or two outside it; the idle process counts too
            allowed = args.pool if "baseline" in name else (args.pool + 2) * api_processes
            if peak > allowed:
                invalid.setdefault(area[name], []).append(
                    f"{name}: {peak} database connections under load (the pool is {args.pool} on both sides)"
                )

    if args.scale and api_ok:
        results["scale"] = scale_check(args, url, [baseline, api])
        sc = results["scale"]
        if sc["large"] < 10 * sc["small"]:
            invalid.setdefault("scale", []).append(
                f"measured at {sc['small']:,} and {sc['large']:,} records: not a 10k-vs-1M comparison"
            )
        elif sc["large"] < args.scale_records:
            notes.append(f"scale measured at {sc['large']:,} records (asked for {args.scale_records:,})")
    if args.full:
        results["extra"] = full_extra(args, url, tmp, results)
    return 0


def full_extra(args: argparse.Namespace, url: str, tmp: Path, results: dict[str, Any]) -> dict[str, Any]:
    """--full: search at the large size (the scale run's database), lag, bulk — bench/extra.py's measurements."""
    import extra

    argv = [
        "--search",
        "--lag",
        "--bulk",
        "--search-records",
        str(count_published(url)),
        "--rounds",
        str(args.search_rounds),
        "--bulk-records",
        str(args.bulk_records),
        "--lag-samples",
        str(args.lag_samples),
    ]
    ex_args = extra.parser().parse_args(argv)
    ex_results: dict[str, Any] = {"checks": {}}
    os.environ["DATABASE_URL"] = url
    asyncio.run(extra.measure(ex_args, url, tmp, ex_results))
    results["extra_checks"] = ex_results.pop("checks")
    return ex_results


def scale_check(args: argparse.Namespace, url: str, servers: list[Server]) -> dict[str, Any]:
    small = count_published(url)
    with console.status(f"scale: timing pages at {small:,} records..."):
        at_small = measure_pages(servers, url, small, args.scale_requests, args.scale_seconds)
    grow = args.scale_records - small
    gen = None
    if grow > 0:
        console.print(f"scale: generating {grow:,} more records (this takes a few minutes)...")
        gen = asyncio.run(datagen.generate(url, grow))
        console.print(f"  {gen['added']:,} records in {gen['seconds']:.0f} s")
    large = count_published(url)
    with console.status(f"scale: timing pages at {large:,} records..."):
        at_large = measure_pages(servers, url, large, args.scale_requests, args.scale_seconds)
    ratios = {
        s.name: {
            p: round(at_large[s.name][p]["median_ms"] / at_small[s.name][p]["median_ms"], 2) for p in ("first", "deep")
        }
        for s in servers
    }
    return {
        "small": small,
        "large": large,
        "requests": args.scale_requests,
        "at_small": at_small,
        "at_large": at_large,
        "ratios": ratios,
        "datagen": gen,
    }


def _check(
    value: float | None, display: str, target: str, ok: bool | None, invalid: list[str] | None
) -> dict[str, Any]:
    status = "INVALID" if invalid else "n/a" if ok is None else "PASS" if ok else "FAIL"
    return {
        "value": value,
        "display": display,
        "target": target,
        "pass": ok,
        "status": status,
        "why": "; ".join(invalid) if invalid else None,
    }


def checks(results: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    inv = results["invalid"]
    load_ = results["load"]
    base, rest, gql = load_.get("baseline"), load_.get("rest"), load_.get("graphql")
    zb, zc = load_.get("zipf_baseline"), load_.get("zipf")
    if base and rest:
        v = rest["rps"] / base["rps"]
        out["REST list req/s, uncached (÷ baseline)"] = _check(
            round(v, 3),
            f"{v:.2f} ({rest['rps']:,.0f} / {base['rps']:,.0f})",
            f"≥ {TARGET_REST_RPS:.2f}",
            v >= TARGET_REST_RPS,
            inv.get("rest"),
        )
        v = rest["p99_ms"] / base["p99_ms"]
        out["REST list p99, uncached (÷ baseline)"] = _check(
            round(v, 3),
            f"{v:.2f}× ({rest['p99_ms']:.1f} ms / {base['p99_ms']:.1f} ms)",
            f"≤ {TARGET_REST_P99:.1f}×",
            v <= TARGET_REST_P99,
            inv.get("rest"),
        )
    elif "rest_error" in results:
        out["REST list req/s, uncached (÷ baseline)"] = _check(
            None, "list page failed", f"≥ {TARGET_REST_RPS:.2f}", False, None
        )
    if rest and gql:
        v = gql["rps"] / rest["rps"]
        out["GraphQL req/s (÷ REST)"] = _check(
            round(v, 3),
            f"{v:.2f} ({gql['rps']:,.0f} / {rest['rps']:,.0f} REST)",
            f"≥ {TARGET_GRAPHQL_RPS:.2f}",
            v >= TARGET_GRAPHQL_RPS,
            (inv.get("graphql") or []) + (inv.get("rest") or []) or None,
        )
    elif results.get("graphql_skipped"):
        out["GraphQL req/s (÷ REST)"] = _check(
            None, f"skipped: {results['graphql_skipped']}", f"≥ {TARGET_GRAPHQL_RPS:.2f}", None, None
        )
    if zb and zc:
        v = zc["rps"] / zb["rps"]
        out["Zipf mix req/s, cache on (÷ baseline)"] = _check(
            round(v, 3),
            f"{v:.2f} ({zc['rps']:,.0f} / {zb['rps']:,.0f}; p99 {zc['p99_ms']:.1f} / {zb['p99_ms']:.1f} ms)",
            f"≥ {TARGET_ZIPF_RPS:.1f}",
            v >= TARGET_ZIPF_RPS,
            inv.get("zipf"),
        )
    elif inv.get("zipf"):
        out["Zipf mix req/s, cache on (÷ baseline)"] = _check(
            None, "not measured", f"≥ {TARGET_ZIPF_RPS:.1f}", None, inv["zipf"]
        )
    if sc := results.get("scale"):
        for page, r in sc["ratios"]["chm-api"].items():
            a, b = sc["at_small"]["chm-api"][page]["median_ms"], sc["at_large"]["chm-api"][page]["median_ms"]
            out[f"list {page} page @ {sc['large']:,} ÷ @ {sc['small']:,}"] = _check(
                r, f"{r:.2f}× ({b:.2f} ms / {a:.2f} ms)", f"≤ {TARGET_SCALE}×", r <= TARGET_SCALE, inv.get("scale")
            )
    for name, c in (results.get("extra_checks") or {}).items():
        out[name] = _check(None, c["measured"], c["target"], c["pass"], c.get("invalid"))
    for name, v in (results.get("rss_mb") or {}).items():
        out[f"RSS of {name} after the run"] = _check(
            v, f"{v:.0f} MB", f"< {TARGET_RSS_MB:.0f} MB", v < TARGET_RSS_MB, None
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
