"""The SQLite audit directory deleted or replaced under load: no 200 leaves without its event in
the durable log the service opened, and reads are refused (503 audit-unavailable) afterwards."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from connector.emulator.server import EmulatorConfig, run_emulator
from connector.web.app import create_app
from connector.web.auth import Role, mint_token
from connector.wiring import PresetAccount, preset_accounts
from tests.e2e.conftest import ALICE, _creds, make_settings

READERS = 8


@asynccontextmanager
async def _service(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The service with its audit log in tmp_path/audit/; yields the base URL and headers."""
    (tmp_path / "audit").mkdir()
    async with run_emulator(EmulatorConfig(seed="e2e", users=1, messages_per_user=5)) as emu:
        presets = {ALICE: PresetAccount("alice", _creds(emu.issue_tokens(emu.users[0])))}
        settings = make_settings(
            f"sqlite:///{tmp_path / 'db.sqlite'}", f"sqlite:///{tmp_path / 'audit' / 'audit.db'}",
            emu,
        )  # fmt: skip
        runner = web.AppRunner(create_app(settings, accounts=preset_accounts(presets)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        headers = {"Authorization": f"Bearer {mint_token(settings, 'alice', Role.USER)}"}
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}", headers
        finally:
            await runner.cleanup()


async def _load(
    base: str, headers: dict[str, str], swapped: asyncio.Event, stop: asyncio.Event
) -> list[tuple[int, str, bool]]:
    """Read alice's messages until `stop`: (status, request id, started after the swap)."""
    seen: list[tuple[int, str, bool]] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        while not stop.is_set():
            after = swapped.is_set()
            async with http.get(f"{base}/v1/accounts/{ALICE}/messages?max_results=2") as r:
                await r.read()
                seen.append((r.status, r.headers["X-Request-ID"], after))
    return seen


def _durable_outcomes(path: Path) -> str:
    """Every body in the audit file at `path`, as one string (request ids included)."""
    with sqlite3.connect(path) as conn:
        return "\n".join(str(row[0]) for row in conn.execute("SELECT body FROM audit_events"))


async def _run_swap(
    tmp_path: Path, swap: Callable[[], None], readiness: list[int]
) -> list[tuple[int, str, bool]]:
    """READERS clients read in a loop; `swap` runs meanwhile; every answer is returned, and
    /readyz's status afterwards is appended to `readiness`."""
    async with _service(tmp_path) as (base, headers):
        swapped, stop = asyncio.Event(), asyncio.Event()
        readers = [asyncio.create_task(_load(base, headers, swapped, stop))
                   for _ in range(READERS)]  # fmt: skip
        await asyncio.sleep(0.5)
        await asyncio.to_thread(swap)
        swapped.set()
        await asyncio.sleep(2)
        stop.set()
        seen = [seen for task in readers for seen in await task]
        async with aiohttp.ClientSession() as http, http.get(f"{base}/readyz") as probe:
            readiness.append(probe.status)
        return seen


async def test_audit_directory_replaced_under_load(tmp_path: Path) -> None:
    """Every 200 has its OUTCOME in the file the service opened; after the swap none is 200."""
    audit_dir = tmp_path / "audit"

    def swap() -> None:
        audit_dir.rename(tmp_path / "aside")
        audit_dir.mkdir()  # an empty directory where the old one was

    readiness: list[int] = []
    seen = await _run_swap(tmp_path, swap, readiness)
    (ready,) = readiness
    ok = [rid for status, rid, _ in seen if status == 200]
    assert ok, "no read succeeded before the swap; the test proved nothing"
    durable = _durable_outcomes(tmp_path / "aside" / "audit.db")
    missing = [rid for rid in ok if rid not in durable]
    assert not missing, f"{len(missing)} answers of 200 have no durable audit event"
    late = [status for status, _, after in seen if after]
    assert late, "no read started after the swap"
    assert set(late) == {503}, late
    assert ready == 503  # and readiness says so: the store is not the one opened


async def test_audit_directory_deleted_under_load(tmp_path: Path) -> None:
    """After the audit directory is deleted every read answers 503, none 200."""
    readiness: list[int] = []
    seen = await _run_swap(tmp_path, lambda: shutil.rmtree(tmp_path / "audit"), readiness)
    assert readiness == [503]
    assert any(status == 200 for status, _, after in seen if not after)
    late = [status for status, _, after in seen if after]
    assert late, "no read started after the deletion"
    assert set(late) == {503}, late
