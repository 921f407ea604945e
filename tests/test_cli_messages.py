"""Connector commands speak plainly: `vault status` before `migrate` says to migrate (exit 2, no
traceback), and `connector serve` logs where it listens."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from connector.testing.fleet import free_port
from tests.web.test_serve_cli import _env, _serve


def test_vault_status_before_migrate_says_to_migrate(tmp_path: Path) -> None:
    """An empty connector database: one line naming `connector migrate`, exit status 2."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
        "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path / 'connector.db'}",
        "CONNECTOR_VAULT_KEYS": f"k1:{key}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "connector", "vault", "status"],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "connector migrate" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


async def test_serve_logs_where_it_listens(tmp_path: Path) -> None:
    """Once the port is open, serve logs one `listening` line with the URL it answers on."""
    port = free_port()
    proc = await _serve(_env(tmp_path, port))
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        while not any('"listening"' in line for line in lines):
            raw = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
            assert raw, "serve exited:\n" + "".join(lines)
            lines.append(raw.decode())
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    (listening,) = [line for line in lines if '"listening"' in line]
    assert f"http://127.0.0.1:{port}" in listening
