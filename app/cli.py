"""The `chm` command line: serve, worker, migrate, tokens, seed, import, export, reindex."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any, Literal

import typer
from rich.console import Console

from app import db
from app.settings import get_settings

cli = typer.Typer(help="chm-api: the Clearing-House Mechanism API server and tools.", no_args_is_help=True)
tokens_cli = typer.Typer(help="Mint and manage API tokens.", no_args_is_help=True)
cli.add_typer(tokens_cli, name="tokens")
webhooks_cli = typer.Typer(help="Manage webhook subscriptions (as the Secretariat).", no_args_is_help=True)
cli.add_typer(webhooks_cli, name="webhooks")
err = Console(stderr=True)


def _run(coro: object) -> object:
    """Run a coroutine on uvloop where available."""
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coro)  # type: ignore[arg-type]


@cli.command()
def migrate() -> None:
    """Apply database migrations up to head."""
    db.migrate()
    err.print("[green]migrations at head[/green]")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind"),
    port: int = typer.Option(8000, help="Port"),
    workers: int = typer.Option(1, help="Worker processes"),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Do not apply migrations first"),
    demo: bool = typer.Option(False, "--demo", help="Load the demo data set first (idempotent)"),
) -> None:
    """Serve the API with uvicorn (uvloop, httptools); applies migrations in development."""
    import uvicorn

    from app.logging import configure

    settings = get_settings()
    url = db.resolve_database_url(settings)
    os.environ["DATABASE_URL"] = url  # worker processes join the same (embedded) server
    get_settings.cache_clear()
    if settings.is_development and not no_migrate:
        db.migrate(url)
    if demo:
        _seed_demo()
    configure(settings.log_level)
    err.print(f"[bold]chm-api[/bold] on http://{host}:{port}  (docs: /docs, GraphQL: /graphql)")
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, loop="uvloop", http="httptools",
                log_config=None, access_log=False)  # fmt: skip


def _seed_demo() -> dict[str, int]:
    from app.services import demo

    async def go() -> dict[str, int]:
        try:
            async with db.transaction() as session:
                return await demo.seed(session)
        finally:
            await db.dispose_engine()

    counts = _run(go())
    assert isinstance(counts, dict)
    return counts


@cli.command()
def seed(demo: bool = typer.Option(False, "--demo", help="Also load the demo data set")) -> None:
    """Load reference data (Parties, vocabularies) and, with --demo, a realistic demo set. Idempotent."""
    from app.services import reference

    db.migrate()

    async def go() -> None:
        try:
            async with db.transaction() as session:
                await reference.sync(session)
        finally:
            await db.dispose_engine()

    _run(go())
    if demo:
        counts = _seed_demo()
        err.print("demo data: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    err.print("[green]reference data loaded[/green]")


@tokens_cli.command("create")
def tokens_create(
    name: str = typer.Option(..., "--name", help="What the token is for, e.g. 'Brazil publishing system'"),
    scopes: str = typer.Option(..., "--scopes", help="Comma-separated scopes, e.g. records:write,records:publish"),
    expires_days: int = typer.Option(..., "--expires-days", help="Days until expiry, 1 to 366"),
    party: str | None = typer.Option(None, "--party", help="Party code, e.g. BR"),
    secretariat: bool = typer.Option(False, "--secretariat", help="Mint a Secretariat token"),
) -> None:
    """Mint a token and print it alone on stdout (TOKEN=$(chm tokens create ...))."""
    from app.errors import AppError
    from app.services import tokens as tokens_service

    if secretariat == (party is not None):
        err.print("[red]give exactly one of --secretariat or --party CODE[/red]")
        raise typer.Exit(2)
    db.migrate()

    async def go() -> tuple[dict[str, Any], str]:
        try:
            async with db.transaction() as session:
                return await tokens_service.mint_bootstrap(
                    session, name=name, party=party, scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                    expires_days=expires_days,
                )  # fmt: skip
        finally:
            await db.dispose_engine()

    try:
        result = _run(go())
    except AppError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    assert isinstance(result, tuple)
    meta, token = result
    err.print(f"minted token {meta['id']} for {meta['principal']} ({', '.join(meta['scopes'])}), "
              f"expires {meta['expires_at']}")  # fmt: skip
    sys.stdout.write(token + "\n")


@tokens_cli.command("list")
def tokens_list(
    party: str | None = typer.Option(None, "--party", help="Only this Party's tokens"),
    limit: int = typer.Option(200, "--limit", help="How many, newest first (1 to 200)"),
) -> None:
    """List tokens (metadata only) as a table."""
    from rich.table import Table

    from app.services import tokens as tokens_service

    db.migrate()

    async def go() -> list[dict[str, Any]]:
        try:
            async with db.read_connection() as conn:
                items, _ = await tokens_service.list_tokens(conn, tokens_service.CLI_ADMIN, party=party, limit=limit)
                return items
        finally:
            await db.dispose_engine()

    items = _run(go())
    assert isinstance(items, list)
    table = Table("id", "name", "principal", "scopes", "expires", "revoked", "last used")
    for t in items:
        table.add_row(str(t["id"]), str(t["name"]), str(t["principal"]), ",".join(t["scopes"]),
                      f"{t['expires_at']:%Y-%m-%d}", f"{t['revoked_at']:%Y-%m-%d %H:%M}" if t["revoked_at"] else "",
                      f"{t['last_used_at']:%Y-%m-%d %H:%M}" if t["last_used_at"] else "")  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 240).print(table)  # pipes get whole rows


@tokens_cli.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The token's id")) -> None:
    """Revoke a token; it is refused from the next request on."""
    import uuid

    from app.errors import AppError
    from app.services import tokens as tokens_service

    try:
        tid = uuid.UUID(token_id)
    except ValueError:
        err.print(f"[red]not a token id: {token_id}[/red]")
        raise typer.Exit(2) from None
    db.migrate()

    async def go() -> None:
        try:
            async with db.transaction() as session:
                await tokens_service.revoke_bootstrap(session, tid)
        finally:
            await db.dispose_engine()

    try:
        _run(go())
    except AppError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    err.print(f"[green]revoked {tid}[/green]")


@cli.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Drain the search outbox and due webhook deliveries, then exit"),
    no_webhooks: bool = typer.Option(False, "--no-webhooks", help="Run the search-outbox worker only"),
) -> None:
    """Keep the search index in sync (the search-outbox worker) and deliver webhooks (the delivery worker)."""
    from app.exchange import webhooks as delivery
    from app.logging import configure
    from app.search import get_backend
    from app.search.worker import default_worker, drain

    settings = get_settings()
    configure(settings.log_level)

    async def go() -> None:
        backend = get_backend()
        hooks = None if no_webhooks else delivery.default_worker()
        try:
            await backend.ensure_ready()
            if once:
                err.print(f"synced {await drain(backend)} outbox rows ({backend.name})")
                if hooks is not None:
                    await hooks.start()
                    await delivery.drain(hooks, within=600)
                    err.print(f"delivered {hooks.delivered} webhook events")
                return
            w = default_worker()
            await w.start()
            if hooks is not None:
                await hooks.start()
            state = "off" if hooks is None else "on"
            err.print(f"[bold]worker[/bold] running (search: {backend.name}, webhooks: {state}); Ctrl-C stops it")
            try:
                await asyncio.Event().wait()
            finally:
                await w.stop()
        finally:
            if hooks is not None:
                await hooks.stop()
            await backend.close()
            await db.dispose_engine()

    _run(go())


@cli.command()
def reindex() -> None:
    """Rebuild the search index from the database into a fresh index and swap it in (no search downtime)."""
    from app.search import get_backend
    from app.search.worker import reindex as do_reindex

    async def go() -> int:
        backend = get_backend()
        try:
            return await do_reindex(backend)
        finally:
            await backend.close()
            await db.dispose_engine()

    count = _run(go())
    err.print(f"[green]reindexed {count} documents and swapped the index in[/green]")


def _webhooks_call(fn: Any) -> Any:
    """Run `fn(session)` in one transaction as the CLI's Secretariat principal; domain errors exit 1."""
    from app.errors import AppError

    db.migrate()

    async def go() -> Any:
        try:
            async with db.transaction() as session:
                return await fn(session)
        finally:
            await db.dispose_engine()

    try:
        return _run(go())
    except AppError as exc:
        err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None


def _subscription_id(value: str) -> Any:
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        err.print(f"[red]not a subscription id: {value}[/red]")
        raise typer.Exit(2) from None


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@webhooks_cli.command("list")
def webhooks_list(status: str | None = typer.Option(None, "--status", help="active, paused or disabled")) -> None:
    """List subscriptions as a table."""
    from rich.table import Table

    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    async def fn(session: Any) -> list[dict[str, Any]]:
        items, _ = await webhooks_service.list_webhooks(session, tokens_service.CLI_ADMIN, status=status, limit=200)
        return items

    items = _webhooks_call(fn)
    table = Table("id", "owner", "url", "status", "delivered seq", "event types", "last error")
    for w in items:
        table.add_row(str(w["id"]), w["owner"], w["url"], w["status"], str(w["delivered_seq"]),
                      ",".join(w["event_types"]) or "*", (w["last_error"] or "")[:60])  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 240).print(table)


@webhooks_cli.command("create")
def webhooks_create(
    url: str = typer.Argument(..., help="The receiver's URL (https outside development)"),
    owner: str | None = typer.Option(None, "--owner", help="The Party that owns it (default: the Secretariat)"),
    event_types: str | None = typer.Option(None, "--events", help="Comma-separated event types, e.g. record.*"),
    parties: str | None = typer.Option(None, "--parties", help="Comma-separated Party codes"),
    kinds: str | None = typer.Option(None, "--kinds", help="Comma-separated kinds, e.g. record,decision"),
    description: str | None = typer.Option(None, "--description"),
) -> None:
    """Create a subscription and print its secret alone on stdout (shown once)."""
    from app.models.webhook import WebhookCreate
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    data = WebhookCreate(url=url, owner=owner, event_types=_csv(event_types), parties=_csv(parties),
                         kinds=_csv(kinds), description=description)  # fmt: skip
    sub, secret = _webhooks_call(lambda s: webhooks_service.create(s, tokens_service.CLI_ADMIN, data=data))
    err.print(f"created webhook subscription {sub['id']} for {sub['owner']} -> {sub['url']}")
    sys.stdout.write(secret + "\n")


def _set_status(subscription_id: str, status: Literal["active", "paused"]) -> None:
    from app.models.webhook import WebhookUpdate
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    sid = _subscription_id(subscription_id)
    data = WebhookUpdate(status=status)
    sub = _webhooks_call(lambda s: webhooks_service.update_webhook(s, tokens_service.CLI_ADMIN, sid, data=data))
    err.print(f"[green]{sub['id']} is {sub['status']}[/green] (delivered up to seq {sub['delivered_seq']})")


@webhooks_cli.command("pause")
def webhooks_pause(subscription_id: str = typer.Argument(..., help="The subscription's id")) -> None:
    """Pause delivery (events wait; resuming continues from where it stopped)."""
    _set_status(subscription_id, "paused")


@webhooks_cli.command("resume")
def webhooks_resume(subscription_id: str = typer.Argument(..., help="The subscription's id")) -> None:
    """Resume a paused or disabled subscription from where it stopped."""
    _set_status(subscription_id, "active")


@webhooks_cli.command("delete")
def webhooks_delete(subscription_id: str = typer.Argument(..., help="The subscription's id")) -> None:
    """Delete a subscription and its delivery log."""
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    sid = _subscription_id(subscription_id)
    _webhooks_call(lambda s: webhooks_service.delete_webhook(s, tokens_service.CLI_ADMIN, sid))
    err.print(f"[green]deleted {sid}[/green]")


@webhooks_cli.command("ping")
def webhooks_ping(subscription_id: str = typer.Argument(..., help="The subscription's id")) -> None:
    """Queue a ping (the worker sends it; see `chm webhooks deliveries`)."""
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    sid = _subscription_id(subscription_id)
    d = _webhooks_call(lambda s: webhooks_service.ping(s, tokens_service.CLI_ADMIN, sid))
    err.print(f"queued ping delivery {d['id']} ({d['event_id']})")


@webhooks_cli.command("rotate-secret")
def webhooks_rotate(subscription_id: str = typer.Argument(..., help="The subscription's id")) -> None:
    """Rotate the signing secret; prints the new one alone on stdout (the old one signs too for the overlap)."""
    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    sid = _subscription_id(subscription_id)
    sub, secret = _webhooks_call(lambda s: webhooks_service.rotate_secret(s, tokens_service.CLI_ADMIN, sid))
    err.print(f"rotated; the previous secret keeps signing until {sub['previous_secret_expires_at']}")
    sys.stdout.write(secret + "\n")


@webhooks_cli.command("deliveries")
def webhooks_deliveries(
    subscription_id: str = typer.Argument(..., help="The subscription's id"),
    limit: int = typer.Option(50, "--limit", help="How many, newest first (1 to 200)"),
) -> None:
    """The delivery log of a subscription, newest first."""
    from rich.table import Table

    from app.services import tokens as tokens_service
    from app.services import webhooks as webhooks_service

    sid = _subscription_id(subscription_id)

    async def fn(session: Any) -> list[dict[str, Any]]:
        items, _ = await webhooks_service.list_deliveries(session, tokens_service.CLI_ADMIN, sid, limit=limit)
        return items

    table = Table("id", "event", "type", "attempt", "outcome", "status", "ms", "error")
    for d in _webhooks_call(fn):
        table.add_row(str(d["id"]), d["event_id"], d["event_type"], str(d["attempt"]), d["outcome"],
                      str(d["status_code"] or ""), f"{d['duration_ms'] or 0:.1f}", (d["error"] or "")[:60])  # fmt: skip
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _register_exchange() -> None:
    from app.exchange.cli import register

    register(cli)


_register_exchange()


def main() -> None:
    """Entry point of the `chm` script."""
    logging.basicConfig(level=logging.WARNING)
    try:
        cli()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
