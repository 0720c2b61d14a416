"""Webhook delivery: events delivered per second and commit-to-receipt lag (SPEC §9: p95 < 1 s).

Run by hand, never as tests. Processes on one machine: this one (publishes records through the services and
times each commit), a delivery worker (`DeliveryWorker`, as `chm worker` runs it) and the receivers (one asyncio
process listening on `--subscriptions` loopback ports, answering 200 and stamping each arrival).

    .venv/bin/python bench/webhooks.py                         # 100 subscriptions x 1,000 events
    .venv/bin/python bench/webhooks.py --subscriptions 10 --events 200 --rate 50
    BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/webhooks.py

Two phases: **burst** (the events published as fast as bulk publishing goes: delivered events/s is the delivery
capacity) and **paced** (`--rate` events/s in transactions of `--batch`: the lag a subscriber sees at that rate).
Lag = receipt time at the receiver - the publisher's commit time, over every (subscription, event) pair.

Meanwhile the API serves its normal load (`--api-rps`, 0 turns it off): chm-api in its own uvicorn process (one
worker, uvloop, httptools, as `chm serve` runs it) and a client process sending GET requests at that rate (the
records list page and the change feed, alternately), open loop; its latency is reported next to the lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CHM_LOG_LEVEL", "WARNING")
os.environ.setdefault("CHM_ENV", "test")  # no in-process workers, loopback receivers allowed
os.environ["CHM_WEBHOOK_MAX_PER_OWNER"] = "100000"

TARGET_LAG_P95_MS = 1000.0


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- receivers (a child process) --------------------------------------------------------------------------------


async def _receivers(n: int, out: str) -> None:
    arrivals: dict[int, list[tuple[str, float]]] = {}

    def handler(port: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            log = arrivals.setdefault(port, [])
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    now = time.time()
                    length, wid = 0, ""
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value)
                        elif name == b"webhook-id":
                            wid = value.strip().decode()
                    await reader.readexactly(length)
                    log.append((wid, now))
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        return handle

    servers = []
    for _ in range(n):
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        servers.append(await asyncio.start_server(handler(port), "127.0.0.1", port))
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    data = json.dumps({str(p): a for p, a in arrivals.items()})
    await asyncio.get_running_loop().run_in_executor(None, Path(out).write_text, data)


# --- the delivery worker (a child process) ----------------------------------------------------------------------


async def _api_load(base: str, rps: float, out: str) -> None:
    """GET requests at `rps` per second (open loop: a slow answer does not slow the schedule) until stdin closes."""
    import httpx

    paths = ["/api/v1/records?limit=50", "/api/v1/changes?limit=100"]
    latencies: list[float] = []
    errors = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, sys.stdin.read).add_done_callback(lambda _: loop.call_soon_threadsafe(stop.set))

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=32)) as client:

        async def one(path: str) -> None:
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client.get(path)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - t) * 1000)

        tasks: set[asyncio.Task[None]] = set()
        started, i = time.perf_counter(), 0
        print("ready", flush=True)
        while not stop.is_set():
            task = asyncio.create_task(one(paths[i % len(paths)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, started + i / rps - time.perf_counter()))
        seconds = time.perf_counter() - started
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    result = {"requests": len(latencies), "errors": errors, "rps": round(len(latencies) / seconds, 1),
              "p50_ms": round(pct(latencies, 50), 1), "p95_ms": round(pct(latencies, 95), 1),
              "p99_ms": round(pct(latencies, 99), 1)}  # fmt: skip
    await loop.run_in_executor(None, Path(out).write_text, json.dumps(result))


def _start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """chm-api on a free loopback port (one uvicorn worker, as in bench/run.py); answers the process and its URL."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port), "--workers",
           "1", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/api/v1/records?limit=1", timeout=5).status_code == 200:
                return proc, base
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"chm-api did not start: {log.read_text(errors='replace')[-2000:]}")


async def _worker(concurrency: int) -> None:
    from app import db
    from app.exchange.webhooks import DeliveryWorker

    db.init_engine()
    w = DeliveryWorker(concurrency=concurrency, name="bench-worker")
    await w.start()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await w.stop()
    print(json.dumps({"cpu_seconds": round(time.process_time(), 2), "delivered": w.delivered}), flush=True)
    await db.dispose_engine()


# --- the publisher (this process) -------------------------------------------------------------------------------


async def _publish(n: int, batch: int, rate: float | None, tag: str) -> dict[int, float]:
    """Publish `n` records (transactions of `batch`, at `rate` events/s or as fast as possible); seq -> commit time."""
    from sqlalchemy import text

    from app import db
    from app.auth.principal import Principal
    from app.services import record_writes

    principal = Principal(kind="secretariat", scopes=frozenset({"admin"}), token_name="bench")  # noqa: S106
    commits: dict[int, float] = {}
    async with db.read_connection() as conn:
        last = (await conn.execute(text("SELECT coalesce(max(seq), 0) FROM changes"))).scalar_one()
    started = time.perf_counter()
    for i in range(0, n, batch):
        if rate:
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        items = [{"type": "news", "title": {"en": f"Bench {tag} {j}"}, "languages": ["en"], "party": "BR",
                  "external_id": f"bench-{tag}-{j}"} for j in range(i, min(n, i + batch))]  # fmt: skip
        async with db.transaction() as session:
            results = await record_writes.bulk_upsert(session, principal, items, publish=True)
        assert all(r["status"] != "error" for r in results), results[:3]
        at = time.time()
        async with db.read_connection() as conn:
            rows = await conn.execute(text("SELECT seq FROM changes WHERE seq > :s AND public ORDER BY seq"),
                                      {"s": last})  # fmt: skip
            for (seq,) in rows:
                commits[seq] = at
                last = seq
    return commits


async def _wait_delivered(head: int, within: float) -> float:
    from sqlalchemy import text

    from app import db

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with db.read_connection() as conn:
            low = (await conn.execute(text("SELECT min(delivered_seq) FROM webhook_subscriptions"))).scalar_one()
        if low >= head:
            return time.time()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not delivered within {within} s")


async def _setup(ports: list[int]) -> None:
    from app import db
    from app.models.webhook import WebhookCreate
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    async with db.transaction() as session:
        for port in ports:
            await webhooks_service.create(session, tokens_service.CLI_ADMIN,
                                          data=WebhookCreate(url=f"http://127.0.0.1:{port}/hook"))  # fmt: skip


def _lags(commits: dict[int, float], arrivals: dict[str, list[list[Any]]]) -> tuple[list[float], float]:
    lags, last = [], 0.0
    for log in arrivals.values():
        seen: set[str] = set()
        for wid, at in log:
            seq = int(wid.removeprefix("evt_")) if wid.startswith("evt_") else None
            if seq in commits and wid not in seen:
                seen.add(wid)
                lags.append((at - commits[seq]) * 1000)
                last = max(last, at)
    return lags, last


async def _phases(args: argparse.Namespace, url: str, ports: list[int], start_worker: Any) -> dict[str, Any]:
    from app import db

    db.init_engine(url)
    try:
        await _setup(ports)
        start_worker()
        t0 = time.time()
        burst = await _publish(args.events, 100, None, "burst")
        done_burst = await _wait_delivered(max(burst), args.timeout)
        paced = await _publish(args.events, args.batch, args.rate, "paced")
        await _wait_delivered(max(paced), args.timeout)
    finally:
        await db.dispose_engine()
    return {"burst": burst, "paced": paced, "burst_seconds": done_burst - t0}


def main(args: argparse.Namespace) -> int:
    from app import db
    from app.settings import get_settings

    tmp: Path | None = None
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        tmp = Path(tempfile.mkdtemp(prefix="chm-bench-webhooks-"))
        url = db.start_embedded(tmp, database="bench", cleanup="delete")
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db.migrate(url)
    out = Path(tempfile.mkdtemp(prefix="chm-bench-arrivals-")) / "arrivals.json"
    env = {**os.environ, "DATABASE_URL": url, "CHM_WEBHOOK_CONCURRENCY": str(args.concurrency)}
    me = [sys.executable, str(Path(__file__).resolve())]
    procs: list[subprocess.Popen[str]] = []
    receivers = subprocess.Popen([*me, "--_receivers", str(args.subscriptions), "--_out", str(out)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    procs.append(receivers)

    api_out = out.parent / "api.json"
    api_proc: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[str]] = []

    def start_worker() -> None:
        nonlocal api_proc
        worker = subprocess.Popen([*me, "--_worker", str(args.concurrency)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
        procs.insert(0, worker)
        workers.append(worker)
        assert worker.stdout is not None
        worker.stdout.readline()
        if args.api_rps > 0:
            api_env = {**env, "CHM_INPROCESS_WORKER": "false", "CHM_RATE_LIMIT_PER_MINUTE": str(10**9)}
            api_proc, base = _start_api(api_env, out.parent / "api.log")
            load = subprocess.Popen([*me, "--_api_load", base, "--_rps", str(args.api_rps), "--_out", str(api_out)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
            procs.insert(0, load)
            assert load.stdout is not None
            load.stdout.readline()

    try:
        assert receivers.stdout is not None
        ports = json.loads(receivers.stdout.readline())
        run = asyncio.run(_phases(args, url, ports, start_worker))
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(60)
        if api_proc is not None:
            api_proc.terminate()
            api_proc.wait(30)
        if tmp is not None and db._embedded is not None:
            db._embedded.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
    worker_stats = json.loads(workers[0].stdout.read() or "{}") if workers and workers[0].stdout else {}
    arrivals = json.loads(out.read_text())
    api = json.loads(api_out.read_text()) if api_out.exists() else None
    shutil.rmtree(out.parent, ignore_errors=True)
    pairs = args.subscriptions * args.events
    burst_lags, _ = _lags(run["burst"], arrivals)
    paced_lags, _ = _lags(run["paced"], arrivals)
    burst_seconds = run["burst_seconds"]
    result = {
        "subscriptions": args.subscriptions, "events_per_phase": args.events, "concurrency": args.concurrency,
        "burst": {"deliveries": len(burst_lags), "expected": pairs, "seconds": round(burst_seconds, 2),
                  "deliveries_per_s": round(len(burst_lags) / burst_seconds, 1),
                  "events_per_s": round(args.events / burst_seconds, 1),
                  "lag_p50_ms": round(pct(burst_lags, 50), 1), "lag_p95_ms": round(pct(burst_lags, 95), 1)},
        "paced": {"rate_events_per_s": args.rate, "batch": args.batch, "deliveries": len(paced_lags),
                  "expected": pairs, "lag_p50_ms": round(pct(paced_lags, 50), 1),
                  "lag_p95_ms": round(pct(paced_lags, 95), 1), "lag_p99_ms": round(pct(paced_lags, 99), 1),
                  "lag_max_ms": round(max(paced_lags, default=float("nan")), 1),
                  "lag_mean_ms": round(statistics.fmean(paced_lags), 1) if paced_lags else None},
        "worker": {**worker_stats, "cpu_ms_per_delivery": round(1000 * worker_stats["cpu_seconds"] / (2 * pairs), 3)
                   if worker_stats.get("cpu_seconds") else None},
        "api_load": api, "load_average": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    ok = result["paced"]["lag_p95_ms"] < TARGET_LAG_P95_MS and len(paced_lags) == pairs == len(burst_lags)
    print(f"paced p95 lag {result['paced']['lag_p95_ms']} ms (target < {TARGET_LAG_P95_MS:.0f}): "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000, help="events per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="paced phase: events/s")
    parser.add_argument("--batch", type=int, default=1, help="paced phase: events per transaction")
    parser.add_argument("--concurrency", type=int, default=64, help="subscriptions the worker serves at once")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--api-rps", type=float, default=20.0,
                        help="the API's normal load meanwhile: GET requests/s (0: none)")  # fmt: skip
    parser.add_argument("--_receivers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_api_load", help=argparse.SUPPRESS)
    parser.add_argument("--_rps", type=float, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    import uvloop  # as `chm worker` runs; the receivers stand for other machines, so keep their cost low

    if ns._receivers:
        uvloop.run(_receivers(ns._receivers, ns._out))
    elif ns._worker:
        uvloop.run(_worker(ns._worker))
    elif ns._api_load:
        uvloop.run(_api_load(ns._api_load, ns._rps, ns._out))
    else:
        sys.exit(main(ns))
