"""Runtime configuration, read once from the environment (and `.env`)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DOMAIN = r"^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)+$"  # an OAI-PMH repositoryIdentifier
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "development"}


class Settings(BaseSettings):
    """All settings of chm-api; environment variables use the names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    # A read-only replica for anonymous reads (app.db.read_engine); unset: DATABASE_URL serves them too.
    database_read_url: str | None = Field(default=None, alias="DATABASE_READ_URL")
    chm_data_dir: Path = Field(default=Path(".chm"), alias="CHM_DATA_DIR")
    chm_env: Literal["development", "production", "test"] = Field(default="development", alias="CHM_ENV")
    chm_secret_key: SecretStr | None = Field(default=None, alias="CHM_SECRET_KEY")
    meili_url: str | None = Field(default=None, alias="MEILI_URL")
    meili_key: SecretStr | None = Field(default=None, alias="MEILI_KEY")
    meili_index_prefix: str = Field(default="chm", alias="MEILI_INDEX_PREFIX")
    public_base_url: str | None = Field(default=None, alias="CHM_PUBLIC_URL")  # None: the request's own origin
    cors_origins: list[str] = Field(default_factory=lambda: ["*"], alias="CHM_CORS_ORIGINS")
    token_issuer: str = Field(default="chm-api", alias="CHM_TOKEN_ISSUER")
    token_audience: str = Field(default="chm-api", alias="CHM_TOKEN_AUDIENCE")
    graphql_ide: bool | None = Field(default=None, alias="CHM_GRAPHQL_IDE")
    graphql_introspection: bool | None = Field(default=None, alias="CHM_GRAPHQL_INTROSPECTION")
    cache_max_age: int = Field(default=60, ge=0, alias="CHM_CACHE_MAX_AGE")  # anonymous reads, seconds
    # The in-process response cache of anonymous reads (app/cache.py), cleared through the change log.
    response_cache: bool = Field(default=True, alias="CHM_RESPONSE_CACHE")
    response_cache_bytes: int = Field(default=32 << 20, ge=0, alias="CHM_RESPONSE_CACHE_BYTES")
    response_cache_max_age: float = Field(default=10.0, gt=0, alias="CHM_RESPONSE_CACHE_MAX_AGE")
    rate_limit_per_minute: int = Field(default=600, alias="CHM_RATE_LIMIT_PER_MINUTE")
    rate_limit_burst: int | None = Field(default=None, ge=1, alias="CHM_RATE_LIMIT_BURST")
    trusted_proxies: str = Field(
        default="",
        alias="CHM_TRUSTED_PROXIES",
        description="Comma-separated addresses/CIDRs whose X-Forwarded-For is believed",
    )
    db_pool_size: int = Field(default=20, alias="CHM_DB_POOL_SIZE")
    # Connections opened past the pool under load (closed again when returned); None: as many as the pool.
    db_max_overflow: int | None = Field(default=None, ge=0, alias="CHM_DB_MAX_OVERFLOW")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, alias="CHM_MAX_BODY_BYTES")
    max_bulk_body_bytes: int = Field(default=10 << 20, ge=1024, alias="CHM_MAX_BULK_BODY_BYTES")
    max_header_bytes: int = Field(default=16 << 10, ge=1024, alias="CHM_MAX_HEADER_BYTES")
    statement_timeout_ms: int = Field(default=15_000, ge=0, alias="CHM_STATEMENT_TIMEOUT_MS")
    db_connect_timeout: float = Field(default=5.0, gt=0, alias="CHM_DB_CONNECT_TIMEOUT")
    db_pool_timeout: float = Field(default=5.0, gt=0, alias="CHM_DB_POOL_TIMEOUT")
    log_level: str = Field(default="INFO", alias="CHM_LOG_LEVEL")
    inprocess_worker: bool | None = Field(default=None, alias="CHM_INPROCESS_WORKER")
    search_candidates: int = Field(default=1100, ge=1100, alias="CHM_SEARCH_CANDIDATES")
    search_batch_size: int = Field(default=200, ge=1, le=5000, alias="CHM_SEARCH_BATCH_SIZE")
    search_poll_seconds: float = Field(default=2.0, gt=0, alias="CHM_SEARCH_POLL_SECONDS")
    search_max_attempts: int = Field(default=5, ge=1, alias="CHM_SEARCH_MAX_ATTEMPTS")
    oai_repository_id: str = Field(default="chm.localhost", pattern=_DOMAIN, alias="CHM_OAI_REPOSITORY_ID")
    oai_repository_name: str = Field(default="Clearing-House Mechanism", alias="CHM_OAI_REPOSITORY_NAME")
    oai_admin_email: str = Field(default="chm@localhost.localdomain", alias="CHM_OAI_ADMIN_EMAIL")
    oai_page_size: int = Field(default=500, ge=1, le=5000, alias="CHM_OAI_PAGE_SIZE")
    content_rights: str = Field(
        default="Public information published through the Clearing-House Mechanism; reuse with attribution.",
        alias="CHM_CONTENT_RIGHTS",
    )
    # Webhooks (see docs/webhooks.md). Private/loopback targets and plain http: development only unless set.
    webhook_allow_private: bool | None = Field(default=None, alias="CHM_WEBHOOK_ALLOW_PRIVATE")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, alias="CHM_WEBHOOK_TIMEOUT_SECONDS")
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0, alias="CHM_WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_max_seconds: float = Field(default=4 * 3600.0, gt=0, alias="CHM_WEBHOOK_RETRY_MAX_SECONDS")
    webhook_disable_after_seconds: float = Field(default=3 * 86400.0, gt=0, alias="CHM_WEBHOOK_DISABLE_AFTER_SECONDS")
    webhook_secret_overlap_seconds: float = Field(default=86400.0, ge=0, alias="CHM_WEBHOOK_SECRET_OVERLAP_SECONDS")
    webhook_poll_seconds: float = Field(default=2.0, gt=0, alias="CHM_WEBHOOK_POLL_SECONDS")
    webhook_concurrency: int = Field(default=64, ge=1, le=512, alias="CHM_WEBHOOK_CONCURRENCY")
    webhook_stuck_after_seconds: float = Field(default=120.0, gt=0, alias="CHM_WEBHOOK_STUCK_AFTER_SECONDS")
    webhook_max_per_owner: int = Field(default=100, ge=1, alias="CHM_WEBHOOK_MAX_PER_OWNER")
    webhook_log_retention_days: int = Field(default=14, ge=1, alias="CHM_WEBHOOK_LOG_RETENTION_DAYS")
    bundle_key: Path | None = Field(default=None, alias="CHM_BUNDLE_KEY")
    _generated_secret: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.chm_env == "production":
            key = self.chm_secret_key.get_secret_value() if self.chm_secret_key else ""
            if key.lower() in _PLACEHOLDERS or len(key.encode()) < 32:
                raise ValueError("CHM_SECRET_KEY must be set to at least 32 random bytes in production")
        return self

    def link_base_url(self) -> str:
        """Where links made outside a request (webhook payloads) point: CHM_PUBLIC_URL, else the default
        local address (a request's own links use the origin it came to)."""
        return (self.public_base_url or "http://127.0.0.1:8000").rstrip("/")

    @property
    def is_development(self) -> bool:
        return self.chm_env != "production"

    @property
    def run_inprocess_worker(self) -> bool:
        """Sync search from inside the API process: on by default in development only (tests start their own)."""
        return self.chm_env == "development" if self.inprocess_worker is None else self.inprocess_worker

    @property
    def webhook_private_targets(self) -> bool:
        """Plain http and loopback/private webhook URLs: allowed in development (local receivers), never otherwise."""
        return self.is_development if self.webhook_allow_private is None else self.webhook_allow_private

    @property
    def ide_enabled(self) -> bool:
        return self.is_development if self.graphql_ide is None else self.graphql_ide

    @property
    def introspection_enabled(self) -> bool:
        return self.is_development if self.graphql_introspection is None else self.graphql_introspection

    def bundle_key_path(self) -> Path:
        """The Ed25519 key that signs offline bundles (`chm bundle keygen` writes it; its `.pub` is published)."""
        return self.bundle_key or self.chm_data_dir / "bundle-signing.key"

    def secret_key(self) -> str:
        """The signing secret: configured, or generated once into the data directory in development."""
        if self.chm_secret_key is not None:
            return self.chm_secret_key.get_secret_value()
        if self._generated_secret is None:  # read once: cursors sign with it on every list page
            path = self.chm_data_dir / "secret.key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(48))
                path.chmod(0o600)
            self._generated_secret = path.read_text().strip()
        return self._generated_secret


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
