"""`connector serve` as an operator runs it: a real process configured by CONNECTOR_* variables."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from connector.settings import Settings
from connector.testing.fleet import free_port
from connector.web.auth import Role, mint_token

JWT_SECRET = "serve-cli-secret-0123456789abcdef0123"


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        **os.environ,
        "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path / 'connector.db'}",
        "CONNECTOR_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "CONNECTOR_JWT_SECRET": JWT_SECRET,
        "CONNECTOR_AUDIT_HASH_KEY": "serve-cli-hash-key",
        "CONNECTOR_VAULT_KEYS": f"k1:{key}",
        "CONNECTOR_OAUTH_CLIENT_ID": "client-id",
        "CONNECTOR_OAUTH_CLIENT_SECRET": "client-secret",
        "CONNECTOR_OAUTH_REDIRECT_URIS": f"http://127.0.0.1:{port}/v1/oauth/callback",
        "CONNECTOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CONNECTOR_PORT": str(port),
        "CONNECTOR_LOG_FORMAT": "json",
    }


async def _serve(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """`connector serve` with these arguments as a child process, stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector", "serve", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _wait_ready(
    http: aiohttp.ClientSession, base: str, proc: asyncio.subprocess.Process
) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            raise AssertionError(f"connector serve exited with {proc.returncode}")
        try:
            async with http.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("connector serve did not start listening")


async def _stop_cleanly(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM: exit 0, and the background loops stopped by their own stop events (asyncio.run
    cancelling every task at once left a CleanupError traceback on stderr)."""
    proc.terminate()
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in err, err.decode(errors="replace")[-2000:]
    assert b"unhandled exception" not in err


async def test_serve_starts_migrates_answers_and_shuts_down(tmp_path: Path) -> None:
    """The process migrates, answers health/readiness/OpenAPI/auth, and exits 0 on SIGTERM."""
    port = free_port()
    proc = await _serve(_env(tmp_path, port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_ready(http, base, proc)
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200, await r.text()
            async with http.get(f"{base}/openapi.json") as r:
                spec = await r.json()
                assert spec["openapi"].startswith("3.1")
                assert "/v1/accounts/{account_id}/messages" in spec["paths"]
            async with http.get(f"{base}/metrics") as r:
                assert "connector_" in await r.text()
            async with http.get(f"{base}/v1/accounts") as r:
                assert r.status == 401
                assert r.content_type == "application/problem+json"
            token = mint_token(Settings(jwt_secret=JWT_SECRET), "u1", Role.USER)
            async with http.get(
                f"{base}/v1/accounts", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["accounts"] == []
    finally:
        await _stop_cleanly(proc)
    assert (tmp_path / "audit.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CONNECTOR_PORT", "eighty", "CONNECTOR_PORT must be an integer"),
        ("CONNECTOR_LOG_FORMAT", "xml", "CONNECTOR_LOG_FORMAT must be"),
        ("CONNECTOR_WORKERS", "0", "CONNECTOR_WORKERS must be between 1 and 64"),
    ],
)
async def test_serve_refuses_bad_settings_with_a_clear_message(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A malformed setting is named on stderr and the process exits 2 without serving."""
    env = _env(tmp_path, free_port())
    env[variable] = value
    proc = await _serve(env)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert message in err.decode()


def _counter(metrics: str, name: str, labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_serve_with_two_workers_shares_the_port_and_reports_the_pool(
    tmp_path: Path,
) -> None:
    """Two worker processes behind one port: every request is counted once in /metrics, whichever
    worker answered the scrape; SIGTERM stops the pool and every worker, exit 0."""
    port = free_port()
    proc = await _serve(_env(tmp_path, port), "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    token = mint_token(Settings(jwt_secret=JWT_SECRET), "u1", Role.USER)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_ready(http, base, proc)
            children = _children(proc.pid)
            assert len(children) == 2, children
            for _ in range(40):  # new connections each time, so the kernel spreads them
                async with aiohttp.ClientSession() as fresh, fresh.get(
                    f"{base}/v1/accounts", headers=auth
                ) as r:
                    assert r.status == 200, await r.text()
            for _ in range(6):  # every scrape, from either worker, sees all 40
                async with aiohttp.ClientSession() as fresh, fresh.get(f"{base}/metrics") as r:
                    text = await r.text()
                assert _counter(text, "connector_http_requests_total", 'route="/v1/accounts"') == 40
    finally:
        await _stop_cleanly(proc)
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


async def test_a_worker_that_cannot_start_stops_the_pool(tmp_path: Path) -> None:
    """A port held by another program: the workers fail to bind, the pool exits 1 and says so."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        proc = await _serve(_env(tmp_path, port), "--workers", "2")
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1
    assert "stopped the pool" in err.decode()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
