"""Offline bundles: manifest, signature, verify, the well-known key."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
import orjson
import pytest

from app import db
from app.exchange import bundle
from app.services import demo
from app.settings import get_settings


@pytest.fixture
async def seeded() -> None:
    async with db.transaction() as s:
        await demo.seed(s)


async def _export(tmp_path: Path, **kw: object) -> tuple[Path, bundle.ExportResult, object]:
    key = bundle.generate_key(tmp_path / "k.key")
    out = tmp_path / "b.zip"
    res = await bundle.export(db.get_engine(), out, source="http://source.test", key=key, **kw)  # type: ignore[arg-type]
    return out, res, key


def _rewrite(src: Path, dst: Path, change: str) -> None:
    """Copy the archive, flipping one byte of the member `change`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == change:
                data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
            zout.writestr(info, data)


async def test_manifest_counts_and_digests(tmp_path: Path, seeded: None) -> None:
    out, _, _ = await _export(tmp_path)
    with zipfile.ZipFile(out) as zf:
        manifest = orjson.loads(zf.read("manifest.json"))
        records = [orjson.loads(line) for line in zf.read("data/records.jsonl").splitlines()]
        assert manifest["counts"]["record"] == len(records) == 320
        assert manifest["counts"]["decision"] == len(zf.read("data/decisions.jsonl").splitlines())
        assert manifest["source"] == "http://source.test" and manifest["high_water_mark"] > 0
        assert set(manifest["files"]) == set(zf.namelist()) - {"manifest.json", "manifest.sig"}
        assert "index.html" in manifest["files"] and "data/parties.jsonl" in manifest["files"]
        assert all(r["status"] == "published" and r["uid"] for r in records)
        decision = orjson.loads(zf.read("data/decisions.jsonl").splitlines()[0])
        assert "paragraphs" in decision


async def test_verify_accepts_then_rejects_one_changed_byte(tmp_path: Path, seeded: None) -> None:
    out, _, key = await _export(tmp_path)
    ok = bundle.verify(out, key.public_key())  # type: ignore[attr-defined]
    assert ok.ok and ok.signature == "valid" and not ok.changed
    bad = tmp_path / "bad.zip"
    _rewrite(out, bad, "data/records.jsonl")
    result = bundle.verify(bad, key.public_key())  # type: ignore[attr-defined]
    assert not result.ok and result.changed == ["data/records.jsonl"] and result.signature == "valid"
    other = bundle.generate_key(tmp_path / "other.key")
    assert bundle.verify(out, other.public_key()).signature == "invalid"


async def test_verify_reports_added_and_removed(tmp_path: Path, seeded: None) -> None:
    out, _, key = await _export(tmp_path, site=False)
    tampered = tmp_path / "t.zip"
    with zipfile.ZipFile(out) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            if info.filename != "data/nodes.jsonl":
                zout.writestr(info, zin.read(info.filename))
        zout.writestr("data/extra.jsonl", b"{}\n")
    result = bundle.verify(tampered, key.public_key())  # type: ignore[attr-defined]
    assert result.removed == ["data/nodes.jsonl"] and result.added == ["data/extra.jsonl"] and not result.ok


async def test_party_and_lang_filters(tmp_path: Path, seeded: None) -> None:
    out, res, _ = await _export(tmp_path, party="BR", langs=["fr"], site=False)
    with zipfile.ZipFile(out) as zf:
        records = [orjson.loads(line) for line in zf.read("data/records.jsonl").splitlines()]
    assert records and all(r["party"] == "BR" for r in records)
    assert all(set(r["title"]) == {"fr"} or set(r["title"]) == {"en"} for r in records)
    assert res.manifest["complete"] is False


async def test_well_known_key(client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHM_BUNDLE_KEY", str(tmp_path / "server.key"))
    get_settings.cache_clear()
    try:
        assert (await client.get("/.well-known/chm-bundle-key")).status_code == 404
        key = bundle.generate_key(tmp_path / "server.key")
        resp = await client.get("/.well-known/chm-bundle-key")
        assert resp.status_code == 200 and resp.json()["crv"] == "Ed25519"
        published = bundle.parse_public_key(resp.content)
        assert bundle.key_id(published) == bundle.key_id(key.public_key())
    finally:
        get_settings.cache_clear()
