"""Schemathesis against a live server on the test database: every REST operation anonymously and with a
Party token, and the GraphQL endpoint; zero 5xx, zero response-schema violations, zero undocumented status
codes. Bounded: a few examples per operation (CHM_SCHEMATHESIS_EXAMPLES raises it)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.auth import token_for

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = os.environ.get("CHM_SCHEMATHESIS_EXAMPLES", "5")
SEED = os.environ.get("CHM_SCHEMATHESIS_SEED", "1313")
REST_CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
               "response_headers_conformance")  # fmt: skip


async def schemathesis(location: str, *args: str) -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        str(exe), "run", location, "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "2", "--no-color",
        # NUL bytes are issue-14 territory (edge validation); lone surrogates and huge numbers are generated.
        "--generation-allow-x00", "false", "--generation-database", "none", *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out = (await asyncio.wait_for(proc.communicate(), 600))[0].decode()
    summary = re.search(r"Test cases:\s*\n\s*(.*)", out)
    print(f"\nschemathesis {location} {' '.join(a for a in args if 'Bearer' not in a)}: "
          f"{summary.group(1) if summary else '?'}")  # fmt: skip
    assert proc.returncode == 0, out[-20000:]
    return out


async def test_rest_anonymously_and_with_a_party_token(live_server: str) -> None:
    spec = live_server + "/openapi.json"
    out = await schemathesis(spec, "--checks", REST_CHECKS, "--phases", "examples,coverage,fuzzing")
    assert re.search(r"Tested: (\d+)", out) and "Selected: " in out
    token = await token_for("BR")
    await schemathesis(spec, "--checks", REST_CHECKS, "--phases", "examples,coverage,fuzzing",
                       "-H", f"Authorization: Bearer {token}")  # fmt: skip


async def test_graphql(live_server: str) -> None:
    token = await token_for("BR")
    await schemathesis(live_server + "/graphql", "--checks", "graphql_no_unexpected_error")
    await schemathesis(live_server + "/graphql", "--checks", "graphql_no_unexpected_error",
                       "-H", f"Authorization: Bearer {token}")  # fmt: skip
