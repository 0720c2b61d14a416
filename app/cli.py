"""The `chm` command line: serve, worker, migrate, tokens, seed, import, export, reindex."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import typer
from rich.console import Console

from app import db
from app.settings import get_settings

cli = typer.Typer(help="chm-api: the Clearing-House Mechanism API server and tools.", no_args_is_help=True)
tokens_cli = typer.Typer(help="Mint and manage API tokens.", no_args_is_help=True)
cli.add_typer(tokens_cli, name="tokens")
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


def main() -> None:
    """Entry point of the `chm` script."""
    logging.basicConfig(level=logging.WARNING)
    try:
        cli()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
