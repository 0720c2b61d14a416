"""schemathesis against a real server process with a Secretariat token: generated requests for every
operation, and not one answered with a 5xx. (The truth of the OpenAPI document itself is checked elsewhere.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.auth import token_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error(engine: object) -> None:
    token = await token_for(None)
    await asyncio.to_thread(_run_against_a_server, token)


def _run_against_a_server(token: str) -> None:
    port = _free_port()
    env = {**os.environ, "CHM_RATE_LIMIT_PER_MINUTE": "0", "CHM_ENV": "test"}
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--log-level", "warning", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the port is not open yet
        st = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or "schemathesis"
        run = subprocess.run(  # noqa: S603
            [st, "run", f"{base}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "25",
             "--phases", "examples,coverage,fuzzing", "--seed", "14", "-H", f"Authorization: Bearer {token}"],
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
