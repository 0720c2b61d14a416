"""Search: documents, backends (Meilisearch when MEILI_URL is set, else PostgreSQL), the outbox worker."""

from __future__ import annotations

from app.search.backend import SearchBackend
from app.settings import Settings, get_settings

_backend: SearchBackend | None = None


def make_backend(settings: Settings | None = None) -> SearchBackend:
    """A new backend for the configured engine."""
    settings = settings or get_settings()
    if settings.meili_url:
        from app.search.meili import MeiliBackend

        key = settings.meili_key.get_secret_value() if settings.meili_key else None
        return MeiliBackend(settings.meili_url, key, index=f"{settings.meili_index_prefix}_documents")
    from app.search.postgres import PostgresBackend

    return PostgresBackend(candidates=settings.search_candidates)


def get_backend() -> SearchBackend:
    """The process-wide backend."""
    global _backend
    if _backend is None:
        _backend = make_backend()
    return _backend


def set_backend(backend: SearchBackend | None) -> None:
    """Replace the process-wide backend (tests, engine switch)."""
    global _backend
    _backend = backend
