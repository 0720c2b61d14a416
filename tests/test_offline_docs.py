"""The docs pages render in headless Chromium with the network off (nothing but this server is reachable):
Swagger UI and ReDoc draw the operations from local assets; the GraphQL page says the IDE needs internet."""

from __future__ import annotations

import asyncio
import shutil

import pytest

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def render(url: str, tmp_path) -> str:
    """The DOM after scripts ran, every host but 127.0.0.1 unreachable (no DNS, a dead proxy)."""
    assert CHROMIUM, "chromium is missing: make test-slow installs it (apt-get install chromium)"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1", "--virtual-time-budget=15000",
        "--dump-dom", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return out.decode()


async def test_swagger_ui_renders_offline(live_server: str, tmp_path) -> None:
    dom = await render(live_server + "/docs", tmp_path)
    assert 'class="swagger-ui"' in dom
    assert "opblock" in dom and "/api/v1/records/{record_id}/publish" in dom  # operations drawn
    assert "authorize" in dom.lower()  # the bearer scheme is offered
    assert live_server in dom  # servers: this origin


async def test_redoc_renders_offline(live_server: str, tmp_path) -> None:
    dom = await render(live_server + "/redoc", tmp_path)
    assert "List records" in dom and "Publish" in dom and "bearerAuth" in dom


async def test_graphql_page_explains_itself_offline(live_server: str, tmp_path) -> None:
    dom = await render(live_server + "/graphql", tmp_path)
    assert "needs internet" in dom and "curl -s -X POST" in dom
