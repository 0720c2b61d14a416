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

# SPEC section 9.
TARGET_REST_RPS = 0.50  # REST req/s >= 50 % of the baseline's
TARGET_REST_P99 = 3.0  # REST p99 <= 3x the baseline's
TARGET_GRAPHQL_RPS = 0.25  # GraphQL req/s >= 25 % of REST's
TARGET_SCALE = 1.5  # list page at 1M records <= 1.5x its time at 10k
TARGET_RSS_MB = 250.0  # one API process after the whole benchmark

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
    wrk: str, target: str, url: str, args: argparse.Namespace, duration: float, body: str | None, tmp: Path
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
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    return parse_wrk(target, out.stdout)


async def _py_load(target: str, url: str, conns: int, duration: float, body: str | None) -> Load:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    if body is None:
                        r = await client.get(url)
                    else:
                        r = await client.post(url, content=body, headers={"content-type": "application/json"})
                    ok = r.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
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
) -> Load:
    if wrk:
        return run_wrk(wrk, target, url, args, duration, body, tmp)
    return asyncio.run(_py_load(target, url, args.connections, duration, body))


# -- GraphQL probe --------------------------------------------------------------------------------------------


def graphql_body(args: argparse.Namespace) -> str:
    query = Path(args.graphql_query).read_text() if args.graphql_query else GRAPHQL_QUERY
    return json.dumps({"query": query}, separators=(",", ":"))


def probe_graphql(api: Server, body: str) -> str | None:
    """None when the query works; otherwise why the GraphQL benchmark is skipped."""
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


# -- reporting ------------------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "[dim]n/a[/]" if ok is None else "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


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


def print_report(results: dict[str, Any]) -> None:
    loads = {k: Load(**v) for k, v in results["load"].items()}
    base, rest, gql = loads.get("baseline"), loads.get("rest"), loads.get("graphql")
    checks = results["checks"]
    if loads or results.get("rest_error"):
        print_load_table(results, base, rest, gql, checks)
    if results.get("scale"):
        print_scale_table(results["scale"])
    ct = Table(title="SPEC §9 checks")
    for col in ("check", "measured", "target", "verdict"):
        ct.add_column(col)
    for name, c in checks.items():
        ct.add_row(name, c["display"], c["target"], verdict(c["pass"]))
    console.print(ct)
    for note in results["notes"]:
        console.print(f"[dim]• {note}[/]")


def print_load_table(results: dict[str, Any], base: Load | None, rest: Load | None, gql: Load | None,
                     checks: dict[str, Any]) -> None:  # fmt: skip
    table = Table(
        title=f"chm-api vs baseline — {results['records']:,} records, "
        f"wrk -t{results['wrk']['threads']} -c{results['wrk']['connections']} "
        f"-d{results['wrk']['duration_s']}s, {results['wrk']['rounds']} round(s)"
    )
    for col in ("target", "req/s", "p50 ms", "p99 ms", "req/s ratio", "p99 ratio", "target (SPEC §9)", "verdict"):
        table.add_column(col, justify="left" if col in ("target", "target (SPEC §9)") else "right")
    if base:
        table.add_row(
            "baseline (Starlette+asyncpg+orjson)",
            f"{base.rps:,.0f}",
            f"{base.p50_ms:.2f}",
            f"{base.p99_ms:.2f}",
            "1.00",
            "1.00",
            "the ceiling",
            "",
        )
    if rest and base:
        c1, c2 = checks["rest_rps_ratio"], checks["rest_p99_ratio"]
        table.add_row(
            "chm-api REST GET /api/v1/records",
            f"{rest.rps:,.0f}",
            f"{rest.p50_ms:.2f}",
            f"{rest.p99_ms:.2f}",
            f"{c1['value']:.2f}",
            f"{c2['value']:.2f}",
            "req/s ≥ 0.50, p99 ≤ 3.0×",
            verdict(c1["pass"] and c2["pass"]),
        )
    elif results.get("rest_error"):
        table.add_row("chm-api REST GET /api/v1/records", "—", "—", "—", "—", "—", "", "[bold red]ERROR[/]")
    if gql and rest:
        c = checks["graphql_rps_ratio"]
        table.add_row(
            "chm-api GraphQL records(first: 50)",
            f"{gql.rps:,.0f}",
            f"{gql.p50_ms:.2f}",
            f"{gql.p99_ms:.2f}",
            f"{c['value']:.2f} of REST",
            f"{gql.p99_ms / base.p99_ms:.2f}" if base else "",
            "req/s ≥ 0.25 × REST",
            verdict(c["pass"]),
        )
    elif results.get("graphql_skipped"):
        table.add_row("chm-api GraphQL records(first: 50)", "—", "—", "—", "—", "—", "skipped", "[dim]skip[/]")
    console.print(table)


def print_scale_table(sc: dict[str, Any]) -> None:
    st = Table(
        title=f"Scale: list page at {sc['small']:,} vs {sc['large']:,} records "
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
        "verdict",
    ):
        st.add_column(col, justify="left" if col in ("server", "page", "target") else "right")
    for name, pages in sc["ratios"].items():
        for page, r in pages.items():
            s_small, s_large = sc["at_small"][name][page], sc["at_large"][name][page]
            is_api = name == "chm-api"
            st.add_row(
                name,
                page,
                f"{s_small['median_ms']:.2f}",
                f"{s_large['median_ms']:.2f}",
                f"{r:.2f}",
                f"{s_small['p95_ms']:.2f} → {s_large['p95_ms']:.2f}",
                "≤ 1.5×" if is_api else "reference",
                verdict(r <= TARGET_SCALE) if is_api else "",
            )
    console.print(st)


# -- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="chm-api vs a plain Starlette baseline (SPEC §9)")
    parser.add_argument("--records", type=int, default=10_000, help="records to generate (default 10,000)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (max 15)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the measurements, report medians")
    parser.add_argument("--graphql-query", help="file with the GraphQL query (default: GRAPHQL_QUERY in run.py)")
    parser.add_argument("--no-graphql", action="store_true", help="skip the GraphQL comparison")
    parser.add_argument("--scale", action="store_true", help="also time the list page at 10k vs 1M records")
    parser.add_argument("--scale-records", type=int, default=1_000_000, help="large size for --scale")
    parser.add_argument("--scale-requests", type=int, default=200, help="sequential requests per page and size")
    parser.add_argument("--scale-seconds", type=float, default=30, help="time budget per page and size (min 10 req)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the scale check (with --scale)")
    for flag in ("--search", "--bulk", "--lag"):  # handled by bench/extra.py (its own database and report)
        parser.add_argument(flag, action="store_true", help=f"run bench/extra.py {flag} instead (see its --help)")
    args, extra_argv = parser.parse_known_args()
    if args.search or args.bulk or args.lag:
        import extra

        flags = [f"--{k}" for k in ("search", "bulk", "lag") if getattr(args, k)]
        return extra.main(flags + extra_argv)
    if extra_argv:
        parser.error(f"unrecognized arguments: {' '.join(extra_argv)}")
    args.duration = min(args.duration, 15.0)

    tmp = Path(tempfile.mkdtemp(prefix="chm-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # registered first, so it runs after PostgreSQL has stopped
    notes: list[str] = []
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "records": args.records,
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
            "rounds": args.rounds,
        },
        "load": {},
        "checks": {},
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
    want = args.records
    if existing < want:
        console.print(f"generating {want - existing:,} records...")
        gen = asyncio.run(datagen.generate(url, want - existing))
        results["datagen"] = gen
        console.print(f"  {gen['added']:,} records in {gen['seconds']:.1f} s")
    elif existing > want:
        notes.append(f"BENCH_DATABASE_URL already holds {existing:,} published records (asked for {want:,})")
    results["records"] = count_published(url)

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BENCH_DATABASE_URL": url,
        "CHM_LOG_LEVEL": "WARNING",
        "CHM_DATA_DIR": str(tmp / "chm-data"),
        "CHM_RATE_LIMIT_PER_MINUTE": str(10**9),
        "CHM_INPROCESS_WORKER": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    notes.append(
        "CHM_RATE_LIMIT_PER_MINUTE is raised to 10^9 so every request passes the limiter (its cost "
        "stays in the measurement, its 429s do not)"
    )
    baseline = start_server("baseline", "baseline:app", free_port(), env, tmp, app_dir=BENCH)
    api = start_server("chm-api", "app.main:app", free_port(), env, tmp)
    servers = [baseline, api]
    try:
        with console.status("waiting for both servers..."):
            base_resp, api_resp = wait_ready(baseline), wait_ready(api)
        if base_resp is None or base_resp.status_code != 200:
            console.print(f"[bold red]baseline failed[/]: {describe_failure(baseline, base_resp)}")
            return 2
        api_ok = api_resp is not None and api_resp.status_code == 200
        if not api_ok:
            results["rest_error"] = describe_failure(api, api_resp)
            console.print(f"[bold red]chm-api list page failed[/]: {results['rest_error']}")
        else:
            results["same_page"] = compare_pages(base_resp, api_resp)
            notes.append(f"baseline vs chm-api first page: {results['same_page']}")

        targets: list[tuple[str, str, str | None]] = [("baseline", baseline.base + LIST_PATH, None)]
        if api_ok:
            targets.append(("rest", api.base + LIST_PATH, None))
        if not args.no_graphql and api.proc.poll() is None:
            body = graphql_body(args)
            why = probe_graphql(api, body)
            if why is None:
                targets.append(("graphql", api.base + "/graphql", body))
            else:
                results["graphql_skipped"] = why
                notes.append(f"GraphQL skipped: {why}")

        if not args.skip_throughput:
            runs: dict[str, list[Load]] = {}
            for target, target_url, body in targets:
                with console.status(f"warming up {target}..."):
                    load(wrk, target, target_url, args, tmp, duration=args.warmup, body=body)
            for rnd in range(args.rounds):
                order = targets[rnd % len(targets) :] + targets[: rnd % len(targets)]  # rotate: no fixed order bias
                for target, target_url, body in order:
                    with console.status(f"round {rnd + 1}/{args.rounds}: {target} for {args.duration:.0f} s..."):
                        runs.setdefault(target, []).append(
                            load(wrk, target, target_url, args, tmp, duration=args.duration, body=body)
                        )
            results["load"] = {k: asdict(median_load(v)) for k, v in runs.items()}
            results["load_rounds"] = {k: [asdict(r) for r in v] for k, v in runs.items()}
            for name, r in results["load"].items():
                if r["errors"]:
                    notes.append(f"{name}: {r['errors']} failed requests (non-2xx or socket errors) during the load")

        if args.scale and api_ok:
            results["scale"] = scale_check(args, url, servers)

        results["rss_mb"] = round(rss_mb(api.proc.pid), 1) if api.proc.poll() is None else None
        results["checks"] = checks(results)
    finally:
        for s in servers:
            s.stop()
    results["finished_at"] = datetime.now(UTC).isoformat()
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    console.print(f"results: {out.relative_to(ROOT)}")
    failed = any(c["pass"] is False for c in results["checks"].values()) or "rest_error" in results
    return 1 if failed else 0


def scale_check(args: argparse.Namespace, url: str, servers: list[Server]) -> dict[str, Any]:
    small = count_published(url)
    with console.status(f"scale: timing pages at {small:,} records..."):
        at_small = measure_pages(servers, url, small, args.scale_requests, args.scale_seconds)
    grow = args.scale_records - small
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
    }


def checks(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    load_ = results["load"]
    base, rest, gql = load_.get("baseline"), load_.get("rest"), load_.get("graphql")
    if base and rest:
        v = rest["rps"] / base["rps"]
        out["rest_rps_ratio"] = {
            "value": round(v, 3),
            "display": f"{v:.2f} ({rest['rps']:,.0f} / {base['rps']:,.0f})",
            "target": f"≥ {TARGET_REST_RPS:.2f}",
            "pass": v >= TARGET_REST_RPS,
        }
        v = rest["p99_ms"] / base["p99_ms"]
        out["rest_p99_ratio"] = {
            "value": round(v, 3),
            "display": f"{v:.2f} ({rest['p99_ms']:.1f} ms / {base['p99_ms']:.1f} ms)",
            "target": f"≤ {TARGET_REST_P99:.1f}×",
            "pass": v <= TARGET_REST_P99,
        }
    elif "rest_error" in results:
        out["rest_rps_ratio"] = {
            "value": None,
            "display": "list page failed",
            "target": f"≥ {TARGET_REST_RPS:.2f}",
            "pass": False,
        }
    if rest and gql:
        v = gql["rps"] / rest["rps"]
        out["graphql_rps_ratio"] = {
            "value": round(v, 3),
            "display": f"{v:.2f} ({gql['rps']:,.0f} / {rest['rps']:,.0f} REST)",
            "target": f"≥ {TARGET_GRAPHQL_RPS:.2f} of REST",
            "pass": v >= TARGET_GRAPHQL_RPS,
        }
    elif results.get("graphql_skipped"):
        out["graphql_rps_ratio"] = {
            "value": None,
            "display": "skipped",
            "target": f"≥ {TARGET_GRAPHQL_RPS:.2f} of REST",
            "pass": None,
        }
    if results.get("scale"):
        for page, r in results["scale"]["ratios"]["chm-api"].items():
            out[f"scale_{page}_page"] = {
                "value": r,
                "display": f"{r:.2f}×",
                "target": f"≤ {TARGET_SCALE}×",
                "pass": r <= TARGET_SCALE,
            }
    if results.get("rss_mb") is not None:
        v = results["rss_mb"]
        out["api_rss_mb"] = {
            "value": v,
            "display": f"{v:.0f} MB",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "pass": v < TARGET_RSS_MB,
        }
    return out


if __name__ == "__main__":
    sys.exit(main())
