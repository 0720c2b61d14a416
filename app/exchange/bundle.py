"""Offline bundles: one zip with JSON Lines of the public state, a static site, and a signed manifest.

    data/<kind>.jsonl        one public entry per line (records, decisions with paragraphs, ...)
    data/deletions.jsonl     delta bundles: entries deleted since the base seq
    index.html, site/...     the offline site (opens from disk, searches in the browser)
    manifest.json            source, creation time, change-log high-water mark, counts, SHA-256 of every file
    manifest.sig             Ed25519 signature of manifest.json's bytes (base64)

Everything streams: rows come through a server-side cursor inside one REPEATABLE READ snapshot (so the
high-water mark and the data agree) and go straight into the archive; memory stays flat.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models.common import LANGS
from app.services import snapshot

FORMAT = "chm-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DELETIONS = "data/deletions.jsonl"


def plural(kind: str) -> str:
    """`party` -> `parties`, `cooperation-request` -> `cooperation-requests` (file names, REST paths)."""
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


# One file per public kind.
FILES: dict[str, str] = {kind: f"data/{plural(kind).replace('-', '_')}.jsonl" for kind in snapshot.KINDS}
KIND_OF_FILE = {path: kind for kind, path in FILES.items()}
KEY_FILE = "bundle-signing.key"

Progress = Callable[[str, int], None]  # (kind, how many more entries written)


def dumps(value: Any) -> bytes:
    """One JSON Lines line (the one serializer of bundles)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


# --- keys ------------------------------------------------------------------------------------------------------


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key next to it (`.pub`)."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path(path).write_bytes(public_pem(key.public_key()))
    return key


def public_path(key_path: Path) -> Path:
    return key_path.with_suffix(".pub")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()[:16]


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037 OKP), as published at /.well-known/chm-bundle-key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "kid": key_id(key), "use": "sig", "alg": "EdDSA"}


def published_jwk(key_path: Path) -> dict[str, str] | None:
    """The JWK of the key at `key_path` (its `.pub`, else derived from the private key); None without one."""
    pub = public_path(key_path)
    if pub.exists():
        return public_jwk(parse_public_key(pub.read_bytes()))
    if key_path.exists():
        return public_jwk(load_private_key(key_path).public_key())
    return None


def parse_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM, a JWK (JSON) or raw base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    if text.startswith(b"{"):
        jwk = orjson.loads(text)
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("the JWK is not an Ed25519 (OKP) key")
        x = jwk["x"] + "=" * (-len(jwk["x"]) % 4)
        return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x))
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


# --- writing ---------------------------------------------------------------------------------------------------


class _Entry:
    """One archive member being written, hashed on the way in."""

    def __init__(self, zf: zipfile.ZipFile, name: str, files: dict[str, dict[str, Any]]) -> None:
        self.name, self._files = name, files
        self._fh: IO[bytes] = zf.open(_info(name), "w", force_zip64=True)
        self._sha = hashlib.sha256()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._sha.update(data)
        self._size += len(data)

    def close(self) -> None:
        self._fh.close()
        self._files[self.name] = {"sha256": self._sha.hexdigest(), "size": self._size}


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # stable archive members: the manifest carries the real time


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def trim_languages(value: Any, langs: frozenset[str]) -> Any:
    """Keep only `langs` in every lstring (falling back to English, then any, so none becomes empty)."""
    if isinstance(value, dict):
        if value and set(value) <= set(LANGS) and all(isinstance(v, str) for v in value.values()):
            kept = {k: v for k, v in value.items() if k in langs}
            if kept:
                return kept
            fallback = "en" if "en" in value else next(iter(value))
            return {fallback: value[fallback]}
        return {k: trim_languages(v, langs) for k, v in value.items()}
    if isinstance(value, list):
        return [trim_languages(v, langs) for v in value]
    return value


@dataclass
class ExportResult:
    path: Path
    manifest: dict[str, Any]
    signed: bool
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


async def export(
    engine: AsyncEngine,
    out: Path,
    *,
    source: str,
    party: str | None = None,
    since: int | None = None,
    langs: list[str] | None = None,
    key: Ed25519PrivateKey | None = None,
    site: bool = True,
    progress: Progress | None = None,
    on_totals: Callable[[dict[str, int]], None] | None = None,
) -> ExportResult:
    """Write a bundle of the public state (or of what changed after `since`) to `out`."""
    from app.exchange.site import SiteBuilder

    started = datetime.now(UTC)
    keep = frozenset(langs) if langs else None
    files: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    tmp = out.with_name(out.name + ".part")
    builder = SiteBuilder(langs=sorted(keep) if keep else list(LANGS)) if site else None
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                hwm = await snapshot.high_water_mark(conn)
                scope = snapshot.Scope(party=party, since=since, until=hwm if since is not None else None)
                if on_totals is not None:
                    totals = {k: int((await conn.execute(snapshot.count_statement(k, scope))).scalar_one())
                              for k in snapshot.ENTITY_KINDS}  # fmt: skip
                    on_totals(totals)
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                    for kind in snapshot.KINDS:
                        entry = _Entry(zf, FILES[kind], files)
                        n = withdrawn = 0
                        async for batch in snapshot.stream(conn, kind, scope):
                            for item in batch:
                                if keep is not None:
                                    item = trim_languages(item, keep)
                                entry.write(dumps(item))
                                withdrawn += item.get("status") == "withdrawn"
                                if builder is not None:
                                    builder.add(kind, item)
                            n += len(batch)
                            if progress is not None:
                                progress(kind, len(batch))
                        entry.close()
                        counts[kind] = n
                        if kind == "record":
                            counts["withdrawn"] = withdrawn
                    gone = await snapshot.deletions(conn, scope)
                    if since is not None:
                        entry = _Entry(zf, DELETIONS, files)
                        for item in gone:
                            entry.write(dumps(item))
                        entry.close()
                        counts["deletion"] = len(gone)
                    manifest = {
                        "format": FORMAT, "source": source, "created_at": started.isoformat(),
                        "high_water_mark": hwm, "since": since, "party": party,
                        "languages": sorted(keep) if keep else None, "complete": since is None and party is None
                        and keep is None, "counts": counts, "files": files,
                    }  # fmt: skip
                    if builder is not None:
                        for name, data in builder.finish(manifest):
                            entry = _Entry(zf, name, files)
                            for chunk in data:
                                entry.write(chunk)
                            entry.close()
                    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                    zf.writestr(_info(MANIFEST), manifest_bytes)
                    if key is not None:
                        zf.writestr(_info(SIGNATURE), base64.b64encode(key.sign(manifest_bytes)))
        os.replace(tmp, out)
    finally:
        if builder is not None:
            builder.cleanup()
        tmp.unlink(missing_ok=True)
    return ExportResult(out, manifest, key is not None, (datetime.now(UTC) - started).total_seconds())


# --- reading and verifying -------------------------------------------------------------------------------------


@dataclass
class Verification:
    """What `verify` found."""

    signature: str  # valid | invalid | missing | unchecked
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.signature in ("valid", "unchecked") and not (self.changed or self.added or self.removed)


class BundleError(Exception):
    """Not a readable bundle."""


def read_manifest(zf: zipfile.ZipFile) -> tuple[bytes, dict[str, Any]]:
    try:
        raw = zf.read(MANIFEST)
        manifest = orjson.loads(raw)
    except KeyError:
        raise BundleError("no manifest.json: not a chm bundle") from None
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"manifest.json is not JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unsupported bundle format {manifest.get('format')!r} (expected {FORMAT})")
    return raw, manifest


def _digest(zf: zipfile.ZipFile, name: str) -> str:
    sha = hashlib.sha256()
    with zf.open(name) as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def verify(path: Path, public_key: Ed25519PublicKey | None) -> Verification:
    """Check the manifest's signature (when a key is given) and every file's SHA-256 against it."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path}: not a zip archive ({exc})") from None
    with zf:
        raw, manifest = read_manifest(zf)
        names = {i.filename for i in zf.infolist() if not i.is_dir()} - {MANIFEST, SIGNATURE}
        listed = manifest.get("files") or {}
        result = Verification(signature="unchecked", manifest=manifest)
        if public_key is not None:
            try:
                public_key.verify(base64.b64decode(zf.read(SIGNATURE), validate=True), raw)
                result.signature = "valid"
            except KeyError:
                result.signature = "missing"
            except (InvalidSignature, ValueError):
                result.signature = "invalid"
        result.removed = sorted(set(listed) - names)
        result.added = sorted(names - set(listed))
        for name in sorted(names & set(listed)):
            try:
                if _digest(zf, name) != listed[name].get("sha256"):
                    result.changed.append(name)
            except (zipfile.BadZipFile, OSError, zlib.error):  # a damaged member fails its CRC or inflate
                result.changed.append(name)
        return result


def iter_lines(zf: zipfile.ZipFile, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, entry) for each line of a JSON Lines member; absent members are empty."""
    if name not in zf.namelist():
        return
    with zf.open(name) as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield n, orjson.loads(line)
