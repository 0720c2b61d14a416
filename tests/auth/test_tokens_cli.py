"""`chm tokens create|list|revoke`, run as the real command against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.auth import bearer

pytestmark = pytest.mark.asyncio
CHM = str(Path(sys.executable).parent / "chm")
WHOAMI = "/api/v1/auth/whoami"


def chm(*args: str) -> subprocess.CompletedProcess[str]:
    # DATABASE_URL and CHM_DATA_DIR (hence the signing secret) come from the conftest fixtures' environment.
    return subprocess.run([CHM, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False)  # noqa: S603


async def test_create_prints_only_the_token_and_it_works(client):
    done = chm("tokens", "create", "--secretariat", "--name", "bootstrap", "--scopes", "admin", "--expires-days", "7")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2 and " " not in lines[0]
    me = (await client.get(WHOAMI, headers=bearer(lines[0]))).json()
    assert me["kind"] == "secretariat" and me["scopes"] == ["admin"] and me["token_name"] == "bootstrap"

    done = chm("tokens", "create", "--party", "br", "--name", "BR CMS", "--scopes", "records:write,records:publish",
               "--expires-days", "30")  # fmt: skip
    assert done.returncode == 0, done.stderr
    me = (await client.get(WHOAMI, headers=bearer(done.stdout.strip()))).json()
    assert (me["kind"], me["party"], me["scopes"]) == ("party", "BR", ["records:publish", "records:write"])

    listed = chm("tokens", "list")
    assert listed.returncode == 0, listed.stderr
    assert "bootstrap" in listed.stdout and "BR CMS" in listed.stdout

    revoked = chm("tokens", "revoke", me["token_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.get(WHOAMI, headers=bearer(done.stdout.strip()))).status_code == 401


@pytest.mark.parametrize(
    "args",
    [["--secretariat", "--scopes", "bogus", "--expires-days", "7"],
     ["--secretariat", "--scopes", "admin", "--expires-days", "0"],
     ["--party", "ZZ", "--scopes", "records:write", "--expires-days", "7"],
     ["--scopes", "admin", "--expires-days", "7"],
     ["--secretariat", "--party", "BR", "--scopes", "admin", "--expires-days", "7"]],
)  # fmt: skip
async def test_create_refuses_bad_input_with_nothing_on_stdout(args):
    done = chm("tokens", "create", "--name", "x", *args)
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip()
