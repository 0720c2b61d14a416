"""Through the public doors only: entries written over REST, `chm export` (full, delta, --party), `chm bundle
verify` and `chm mirror` as real commands into a second database. Opportunities travel like every other kind."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import db
from app.models.opportunity import OpportunityCreate
from app.services import opportunities, snapshot
from app.services.tokens import CLI_ADMIN
from tests.auth import bearer, token_for
from tests.exchange.conftest import as_served, public_state

CHM = str(Path(sys.executable).with_name("chm"))
URL = "/api/v1/opportunities"
MINE = "BR"  # the mirror's own Party


async def chm(*args: str, database_url: str, data_dir: Path) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "CHM_DATA_DIR": str(data_dir), "CHM_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(CHM, *args, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def lines(path: Path, name: str) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        return [orjson.loads(line) for line in zf.read(name).splitlines()]


def manifest(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        return orjson.loads(zf.read("manifest.json"))


def opportunity(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"en": title, "fr": f"{title} (fr)"}, "description": {"en": f"About {title.lower()}."},
            "gbf_targets": ["GBF-TARGET-03"], "application_deadline": "2031-01-31", **extra}  # fmt: skip


async def test_opportunities_full_delta_and_mirror(
    client: httpx.AsyncClient, tmp_path: Path, database_url: str, mirror_url: str, target: AsyncEngine
) -> None:
    sn = bearer(await token_for("SN", "cooperation:write"))
    br = bearer(await token_for(MINE, "cooperation:write"))
    secretariat = bearer(await token_for(None, "cooperation:write"))

    async def post(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        r = await client.post(URL, json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()

    closing = await post(opportunity("Wetland grants", contact={"name": "Desk", "email": "desk@example.org"}), sn)
    dropped = await post(opportunity("Herbarium exchange", provider_organization="Botanic Garden Network",
                                     provider_party=None), secretariat)  # fmt: skip
    theirs = await post(opportunity("Amazon fellowships"), br)  # BR's at the source: the mirror owns BR
    data = tmp_path / "data"
    src = {"database_url": database_url, "data_dir": data}
    assert (await chm("bundle", "keygen", "--out", str(tmp_path / "k.key"), **src))[0] == 0

    full = tmp_path / "full.zip"
    code, err = await chm("export", "--out", str(full), "--key", str(tmp_path / "k.key"), "--no-site", **src)
    assert code == 0, err
    m = manifest(full)
    assert m["counts"]["opportunity"] == 3 and "data/opportunities.jsonl" in m["files"]
    exported = sorted(as_served("opportunity", lines(full, "data/opportunities.jsonl")), key=lambda o: o["id"])
    assert exported == sorted([closing, dropped, theirs], key=lambda o: o["id"])  # what REST serves

    one = tmp_path / "sn.zip"
    assert (await chm("export", "--out", str(one), "--party", "sn", "--no-site", **src))[0] == 0
    assert [o["id"] for o in lines(one, "data/opportunities.jsonl")] == [closing["id"]]

    # after the full bundle: one closed, one deleted, one new
    r = await client.patch(f"{URL}/{closing['id']}", json={"status": "closed"}, headers=sn)
    assert r.status_code == 200, r.text
    assert (await client.delete(f"{URL}/{dropped['id']}", headers=secretariat)).status_code == 204
    fresh = await post(opportunity("Coral nurseries"), sn)
    delta = tmp_path / "delta.zip"
    code, err = await chm("export", "--out", str(delta), "--since", str(m["high_water_mark"]), "--key",
                          str(tmp_path / "k.key"), **src)  # fmt: skip
    assert code == 0, err
    d = manifest(delta)
    assert d["counts"]["opportunity"] == 2 and d["counts"]["deletion"] == 1
    assert {o["id"]: o["status"] for o in lines(delta, "data/opportunities.jsonl")} == \
        {closing["id"]: "closed", fresh["id"]: "open"}  # fmt: skip
    [deletion] = lines(delta, "data/deletions.jsonl")
    assert (deletion["kind"], deletion["id"]) == ("opportunity", dropped["id"])
    assert deletion["seq"] > m["high_water_mark"]

    pub = str(tmp_path / "k.pub")
    assert (await chm("bundle", "verify", str(delta), "--key", pub, **src))[0] == 0

    # the mirror: a national node of BR with an opportunity of its own
    async with target.connect() as conn, conn.begin():
        own = await opportunities.create_opportunity(AsyncSession(bind=conn), CLI_ADMIN, data=OpportunityCreate(
            provider_party=MINE, title={"en": "Our own call"}))  # fmt: skip
    dst = {"database_url": mirror_url, "data_dir": tmp_path / "mirror-data"}
    code, err = await chm("mirror", str(full), str(delta), "--key", pub, "--own", MINE, **dst)
    assert code == 0, err
    want = await public_state(db.get_engine(), skip_party=MINE)
    got = await public_state(target, skip_party=MINE)
    for kind in snapshot.KINDS:
        assert got[kind] == want[kind], kind
    assert [(o["id"], o["status"]) for o in got["opportunity"]] == sorted(
        [(closing["id"], "closed"), (fresh["id"], "open")]
    )
    mirrored_br = [o["id"] for o in (await public_state(target))["opportunity"] if o["provider_party"] == MINE]
    assert mirrored_br == [str(own["id"])]  # the source's BR entry stayed out; the node's own one is untouched
    code, err = await chm("mirror", str(delta), "--key", pub, "--own", MINE, **dst)  # again: nothing changes
    assert code == 0 and "opportunity unchanged=2" in err, err
    assert await public_state(target, skip_party=MINE) == got


async def test_import_jsonl_to_a_remote_server(live: str, tmp_path: Path, database_url: str) -> None:
    token = await token_for("SN", "records:write", "records:publish")
    src = tmp_path / "rows.jsonl"
    rows = [{"external_id": f"j-{i}", "type": "news", "title": {"en": f"Remote news {i}", "fr": f"Nouvelle {i}"}}
            for i in range(5)]  # fmt: skip
    rows[3]["gbf_targets"] = ["GBF-TARGET-99"]
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows[:2]) + b"\n{not json\n"
                    + b"".join(orjson.dumps(r) + b"\n" for r in rows[2:]))  # fmt: skip
    code, err = await chm("import", str(src), "--url", live, "--token", token, "--publish", "--batch-size", "2",
                          database_url=database_url, data_dir=tmp_path)  # fmt: skip
    assert code == 1, err  # two items rejected
    with (tmp_path / "rows.jsonl.errors.csv").open(newline="") as fh:
        report = list(csv.reader(fh))
    assert report[0] == ["line", "external_id", "field", "reason"] and len(report) == 3
    assert report[1][:3] == ["4", "", ""] and report[1][3].startswith("not JSON")
    assert report[2][:3] == ["6", "j-3", "gbf_targets"] and "GBF-TARGET-99" in report[2][3]
    async with httpx.AsyncClient(base_url=live) as client:
        listed = (await client.get("/api/v1/records", params={"party": "SN", "limit": 50})).json()["items"]
    assert sorted(r["external_id"] for r in listed) == ["j-0", "j-1", "j-2", "j-4"]
    assert {r["status"] for r in listed} == {"published"}


async def test_bundle_import_and_mirror_from_a_live_feed(
    live: str, tmp_path: Path, database_url: str, mirror_url: str, target: AsyncEngine
) -> None:
    sn = bearer(await token_for("SN", "records:write", "records:publish", "cooperation:write"))
    async with httpx.AsyncClient(base_url=live) as client:
        r = await client.post(
            "/api/v1/records/bulk",
            params={"publish": "true"},
            headers=sn,
            json={
                "items": [
                    {"external_id": f"b-{i}", "type": "resource", "title": {"en": f"Field guide {i}"}} for i in range(3)
                ]
            },
        )
        assert r.status_code == 200, r.text  # fmt: skip
        opp = (await client.post(URL, json=opportunity("Reef monitoring kits"), headers=sn)).json()
        full = tmp_path / "full.zip"
        src = {"database_url": database_url, "data_dir": tmp_path / "src"}
        assert (await chm("export", "--out", str(full), "--no-site", **src))[0] == 0

        # `chm import` of a bundle: its published records, keyed by external_id, into another database
        dst = {"database_url": mirror_url, "data_dir": tmp_path / "dst"}
        code, err = await chm("import", str(full), "--publish", "--state", str(tmp_path / "s.json"), **dst)
        assert code == 0 and "created=3" in err, err

        # `chm mirror --from`: the live feed; it keeps its position in the data directory
        await _wipe(target)
        code, err = await chm("mirror", "--from", live, "--once", **dst)
        assert code == 0, err
        got = await public_state(target)
        assert [o["id"] for o in got["opportunity"]] == [opp["id"]]
        assert sorted(r["uid"] for r in got["record"]) == sorted(x["uid"] for x in lines(full, "data/records.jsonl"))
        assert (await client.delete(f"{URL}/{opp['id']}", headers=sn)).status_code == 204
        code, err = await chm("mirror", "--from", live, "--once", **dst)  # resumes after the saved seq
        assert code == 0 and "deleted=1" in err, err
    assert (await public_state(target))["opportunity"] == []


async def _wipe(engine: AsyncEngine) -> None:
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE records, record_revisions, changes, audit_events, search_outbox CASCADE"))
