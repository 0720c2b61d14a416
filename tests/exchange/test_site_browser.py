"""The offline site in headless Chromium, from file:// with the network disabled (DOM asserted via --dump-dom)."""

from __future__ import annotations

import asyncio
import re
import shutil
import zipfile
from pathlib import Path

import httpx
import orjson
import pytest

from app import db
from app.exchange import bundle
from app.services import demo, record_writes
from app.services.tokens import CLI_ADMIN
from tests.auth import bearer, token_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def dom(site: Path, fragment: str) -> str:
    assert CHROMIUM, "chromium is not installed (make test-slow installs it)"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=10000", "--dump-dom", f"{(site / 'index.html').as_uri()}#{fragment}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    html = out.decode()
    assert 'data-ready="1"' in html, html[-2000:]
    return html


async def test_bundle_site_offline(tmp_path: Path, client: httpx.AsyncClient) -> None:
    sn = bearer(await token_for("SN", "cooperation:write"))
    r = await client.post(
        "/api/v1/opportunities",
        headers=sn,
        json={
            "title": {"en": "Seagrass mapping grants", "fr": "Cartographie des herbiers marins"},
            "description": {"en": "Small grants for coastal teams that map seagrass meadows."},
            "assistance_types": ["technical"],
            "gbf_targets": ["GBF-TARGET-02"],
            "application_deadline": "2031-03-31",
        },
    )
    assert r.status_code == 201, r.text  # fmt: skip
    async with db.transaction() as s:
        await demo.seed(s)
        [made] = await record_writes.bulk_upsert(s, CLI_ADMIN, [{
            "external_id": "browser-1", "party": "SN", "type": "resource",
            "title": {"en": "Mangrove nurseries", "fr": "Pépinières de palétuviers côtiers"},
            "summary": {"en": "How coastal villages grow mangroves."}, "gbf_targets": ["GBF-TARGET-02"]}],
            publish=True)  # fmt: skip
    out = tmp_path / "b.zip"
    await bundle.export(db.get_engine(), out, source="http://source.test")
    site = tmp_path / "site"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(site)
        decisions = [orjson.loads(line) for line in zf.read("data/decisions.jsonl").splitlines()]
    for asset in ("index.html", "site/app.js", "site/style.css"):  # nothing reaches for the network
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", (site / asset).read_text()), asset

    home = await dom(site, "/")
    assert home.count('class="hit"') == 25 and 'id="records"' in home

    found = await dom(site, "/search/paletuviers")  # accents folded: "palétuviers"
    assert "Mangrove nurseries" in found and found.count('class="hit"') == 1

    i, decision = next((n, d) for n, d in enumerate(decisions) if len(d["paragraphs"]) >= 2)
    page = await dom(site, f"/d/{i}")
    assert decision["code"] in page
    paragraphs = re.search(r'<ol class="paragraphs" id="paragraphs">(.*?)</ol>', page, re.S)
    assert paragraphs and paragraphs.group(1).count("<li") == len(decision["paragraphs"])
    first = decision["paragraphs"][0]["text"]
    assert (first.get("en") or next(iter(first.values())))[:40] in page.replace("&nbsp;", " ")

    record_page = await dom(site, "/f/party:sn")
    assert "Mangrove nurseries" in record_page and "Seagrass mapping grants" in record_page
    assert made["status"] == "created"

    listed = await dom(site, "/opportunities")  # the opportunities tab lists them
    assert listed.count('class="hit opportunity-hit"') == 1 and "Seagrass mapping grants" in listed
    found = await dom(site, "/search/herbiers")  # a word of its French title only
    assert found.count('class="hit opportunity-hit"') == 1 and found.count('class="hit"') == 0
    page = await dom(site, "/o/0")
    assert "Small grants for coastal teams" in page and "2031-03-31" in page and "Technical assistance" in page
