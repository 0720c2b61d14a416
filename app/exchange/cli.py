"""CLI adapters for exchange: `chm export`, `chm import`, `chm mirror` and `chm bundle keygen|verify`.

Registered on the main `chm` app by `register(cli)`; each command parses options, calls app/exchange, prints.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from app import db
from app.settings import get_settings

bundle_cli = typer.Typer(help="Sign and verify offline bundles.", no_args_is_help=True)
err = Console(stderr=True)


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False)  # fmt: skip


def _langs(value: str | None) -> list[str] | None:
    from app.models.common import LANGS

    if not value:
        return None
    langs = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [v for v in langs if v not in LANGS]
    if unknown:
        err.print(f"[red]unknown language(s) {', '.join(unknown)}; use {', '.join(LANGS)}[/red]")
        raise typer.Exit(2)
    return langs


def export(
    out: Path = typer.Option(..., "--out", "-o", help="The bundle to write, e.g. chm-2026-12-01.zip"),
    party: str | None = typer.Option(None, "--party", help="Only the entries this Party owns"),
    since: int | None = typer.Option(None, "--since", min=0, help="Delta: only what changed after this change seq"),
    lang: str | None = typer.Option(None, "--lang", help="Keep only these languages, e.g. en,fr"),
    key: Path | None = typer.Option(
        None, "--key", help="Ed25519 signing key (default: CHM_BUNDLE_KEY or the data directory's bundle-signing.key)"
    ),
    no_site: bool = typer.Option(False, "--no-site", help="JSON Lines and manifest only, no offline site"),
) -> None:
    """Write an offline bundle: JSON Lines of the public state, a static site, a signed manifest."""
    from app.exchange import bundle

    settings = get_settings()
    langs = _langs(lang)
    key_path = key or settings.bundle_key_path()
    signing = bundle.load_private_key(key_path) if key_path.exists() else None
    if signing is None:
        if key is not None:
            err.print(f"[red]no key at {key}[/red]")
            raise typer.Exit(2)
        err.print("[yellow]no signing key (chm bundle keygen makes one): the bundle is unsigned[/yellow]")
    db.migrate()

    async def go() -> bundle.ExportResult:
        tasks: dict[str, Any] = {}
        with _progress() as progress:

            def totals(t: dict[str, int]) -> None:
                for kind, n in t.items():
                    tasks[kind] = progress.add_task(bundle.plural(kind), total=n)

            def advance(kind: str, n: int) -> None:
                if kind in tasks:
                    progress.advance(tasks[kind], n)

            try:
                return await bundle.export(
                    db.get_engine(), out, source=settings.link_base_url(), party=party.upper() if party else None,
                    since=since, langs=langs, key=signing, site=not no_site, progress=advance, on_totals=totals,
                )  # fmt: skip
            finally:
                await db.dispose_engine()

    result = _run(go())
    counts = result.manifest["counts"]
    err.print(f"[green]wrote {out}[/green] ({out.stat().st_size / 1e6:.1f} MB, {result.seconds:.1f} s, "
              f"{'signed' if result.signed else 'unsigned'}, high-water mark {result.manifest['high_water_mark']}): "
              + ", ".join(f"{k}={v}" for k, v in counts.items()))  # fmt: skip


@bundle_cli.command("keygen")
def keygen(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Private key file (default: CHM_BUNDLE_KEY or the data "
        "directory's bundle-signing.key); the public key goes next to it as .pub",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing key"),
) -> None:
    """Make the Ed25519 key that signs bundles; its public half is served at /.well-known/chm-bundle-key."""
    from app.exchange import bundle

    path = out or get_settings().bundle_key_path()
    if path.exists() and not force:
        err.print(f"[red]{path} exists; --force replaces it (bundles signed with it will no longer verify)[/red]")
        raise typer.Exit(1)
    key = bundle.generate_key(path)
    err.print(f"[green]wrote {path}[/green] and {bundle.public_path(path)} (key id {bundle.key_id(key.public_key())})")
    sys.stdout.write(bundle.public_pem(key.public_key()).decode())


def _public_key(spec: str) -> Any:
    from app.exchange import bundle

    if spec.startswith(("http://", "https://")):
        import httpx

        url = spec if "/.well-known/" in spec else spec.rstrip("/") + "/.well-known/chm-bundle-key"
        resp = httpx.get(url, timeout=30)
        resp.raise_for_status()
        return bundle.parse_public_key(resp.content)
    return bundle.parse_public_key(Path(spec).read_bytes())


@bundle_cli.command("verify")
def verify(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The bundle"),
    key: str = typer.Option(..., "--key", help="Public key: a PEM or JWK file, or the source server's URL"),
) -> None:
    """Check the manifest's signature and every file's SHA-256; list files changed, added or removed."""
    from app.exchange import bundle

    try:
        result = bundle.verify(file, _public_key(key))
    except (bundle.BundleError, ValueError, OSError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    m = result.manifest
    err.print(f"{file}: from {m.get('source')} at {m.get('created_at')}, high-water mark {m.get('high_water_mark')}"
              + (f", delta since {m['since']}" if m.get("since") is not None else ""))  # fmt: skip
    err.print(f"signature: {result.signature}")
    for label, names in (("changed", result.changed), ("added", result.added), ("removed", result.removed)):
        for name in names:
            err.print(f"[red]{label}: {name}[/red]")
    if not result.ok:
        err.print("[red]NOT VERIFIED[/red]")
        raise typer.Exit(1)
    err.print(f"[green]verified: {len(m.get('files', {}))} files match the signed manifest[/green]")


def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv, .jsonl or bundle .zip"),
    url: str | None = typer.Option(None, "--url", help="Push to this remote server's bulk endpoint"),
    token: str | None = typer.Option(None, "--token", envvar="CHM_TOKEN", help="Bearer token for --url"),
    party: str | None = typer.Option(None, "--party", help="Party of rows that name none"),
    publish: bool = typer.Option(False, "--publish", help="Publish every created or changed record"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate only; nothing is written"),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=1000, help="Records per bulk request"),
    state: Path | None = typer.Option(None, "--state", help="State file (default: FILE.import-state.json)"),
    report: Path | None = typer.Option(None, "--report", help="Error report CSV (default: FILE.errors.csv)"),
    restart: bool = typer.Option(False, "--restart", help="Ignore the state file and start from the first line"),
    fmt: str | None = typer.Option(None, "--format", help="csv, jsonl or bundle (default: from the file)"),
) -> None:
    """Push records through the bulk service (or a remote bulk endpoint): resumable, with an error report."""
    from app.exchange import importer
    from app.services.tokens import CLI_ADMIN

    default_state, default_report = importer.default_paths(file)
    if url and not token:
        err.print("[red]--url needs --token (or CHM_TOKEN)[/red]")
        raise typer.Exit(2)
    if not url:
        db.migrate()

    async def go() -> importer.ImportSummary:
        sink: Any = importer.RemoteSink(url, token or "") if url else importer.LocalSink(db.get_engine(), CLI_ADMIN)
        try:
            total = importer.count_items(file, fmt)
            with _progress() as progress:
                task = progress.add_task("records", total=total)
                return await importer.run(file, sink, state_path=state or default_state,
                                          report_path=report or default_report, fmt=fmt, batch_size=batch_size,
                                          publish=publish, dry_run=dry_run, restart=restart,
                                          default_party=party.upper() if party else None,
                                          on_progress=lambda n: progress.advance(task, n))  # fmt: skip
        finally:
            if url:
                await sink.close()
            else:
                await db.dispose_engine()

    try:
        summary = _run(go())
    except importer.ImportFileError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if summary.resumed_from:
        err.print(f"resumed after line {summary.resumed_from}")
    err.print(("[yellow]dry run:[/yellow] " if dry_run else "") + ", ".join(f"{k}={v}" for k, v in
              sorted(summary.counts.items())))  # fmt: skip
    if summary.errors:
        err.print(f"[yellow]{summary.errors} item(s) rejected: see {summary.report}[/yellow]")
        raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    """Add the exchange commands to `chm`."""
    cli.command("export")(export)
    cli.command("import")(import_)
    cli.add_typer(bundle_cli, name="bundle")
    _register_mirror(cli)


def mirror(
    bundles: list[Path] = typer.Argument(None, help="Bundles to apply in order (a full one, then deltas)"),
    source: str | None = typer.Option(None, "--from", help="Follow this server's change feed instead"),
    key: str | None = typer.Option(None, "--key", help="Source's public key (PEM/JWK file or URL); checks signatures"),
    own: str | None = typer.Option(None, "--own", help="Comma-separated Parties this instance owns: never touched"),
    since: int | None = typer.Option(None, "--since", help="--from: start after this seq (default: saved state)"),
    once: bool = typer.Option(False, "--once", help="--from: stop when caught up"),
    poll: float = typer.Option(10.0, "--poll", help="--from: seconds between polls when caught up"),
) -> None:
    """Reproduce another instance's public state here: apply bundles, or follow its change feed (--from)."""
    from app.exchange import mirror as mirror_exchange
    from app.services.tokens import CLI_ADMIN

    if bool(bundles) == bool(source):
        err.print("[red]give bundle files or --from URL[/red]")
        raise typer.Exit(2)
    owned = frozenset(p.strip().upper() for p in (own or "").split(",") if p.strip())
    public_key = _public_key(key) if key else None
    db.migrate()
    state_file = get_settings().chm_data_dir / "mirror-state.json"

    async def go() -> None:
        try:
            if bundles:
                for path in bundles:
                    totals = await mirror_exchange.apply_bundle(db.get_engine(), path, CLI_ADMIN,
                                                                public_key=public_key, own=owned)  # fmt: skip
                    err.print(
                        f"[green]{path}[/green]: "
                        + "; ".join(
                            f"{k} " + ",".join(f"{s}={n}" for s, n in sorted(c.items())) for k, c in totals.items() if c
                        )
                    )
                return
            import httpx
            import orjson

            assert source is not None
            states = orjson.loads(state_file.read_bytes()) if state_file.exists() else {}
            start = since if since is not None else int(states.get(source, 0))

            def saved(seq: int, counts: Any) -> None:
                states[source] = seq
                state_file.parent.mkdir(parents=True, exist_ok=True)
                state_file.write_bytes(orjson.dumps(states))
                err.print(f"seq {seq}: " + ",".join(f"{s}={n}" for s, n in sorted(counts.items())))

            async with httpx.AsyncClient(base_url=source, timeout=60) as client:
                last = await mirror_exchange.follow(db.get_engine(), client, CLI_ADMIN, since=start, own=owned,
                                                    once=once, poll_seconds=poll, on_batch=saved)  # fmt: skip
            err.print(f"[green]caught up with {source} at seq {last}[/green]")
        finally:
            await db.dispose_engine()

    try:
        _run(go())
    except mirror_exchange.MirrorError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _register_mirror(cli: typer.Typer) -> None:
    cli.command("mirror")(mirror)
