"""Readiness: database reachable, migrations at head; a stuck webhook delivery worker is reported."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[2]


@lru_cache
def alembic_heads() -> frozenset[str]:
    """Head revisions of the migration scripts shipped with the code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


async def readiness(conn: AsyncConnection) -> dict[str, Any]:
    """Check the database and the schema version; `ok` is False when anything is off."""
    checks: dict[str, Any] = {}
    try:
        current = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        checks["database"] = "ok"
        heads = alembic_heads()
        checks["migrations"] = "ok" if current == heads else f"at {sorted(current)}, head is {sorted(heads)}"
    except Exception as exc:  # any failure here means "not ready", never a 500
        checks.setdefault("database", f"error: {type(exc).__name__}")
        checks["migrations"] = "unknown"
    ok = all(v == "ok" for v in checks.values())
    try:
        from app.services import webhooks

        n, oldest = await webhooks.stuck(conn)
        checks["webhook_delivery"] = "ok" if n == 0 else f"stuck: {n} subscription(s) waiting {oldest:.0f} s"
    except Exception as exc:  # reported, never a 500
        checks["webhook_delivery"] = f"unknown: {type(exc).__name__}"
    # A stuck delivery worker is reported, not fatal: taking the API out of rotation would not deliver anything.
    return {"ok": ok, "checks": checks}
