"""Through the public doors only: entries written over REST, `chm export` (full, delta, --party), `chm bundle
verify` and `chm mirror` as real commands into a second database. Opportunities travel like every other kind."""

from __future__ import annotations

import asyncio
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
