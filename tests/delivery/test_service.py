"""The running service delivers its change feed to CONNECTOR_WEBHOOK_URL: signed (verified by
a receiver written with the reference library), in order, each POST recorded in the audit log
before it is made; no URL, no delivery (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

from audit.vocab import Action, Decision
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.sync_store import append_rows
from connector.db import session_factory
from connector.web.app import ENGINE
from tests.e2e.conftest import ALICE, Stack, running_stack

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


async def _append(s: Stack, *changes: Change) -> list[int]:
    async with session_factory(s.app[ENGINE])() as session, session.begin():
        rows = append_rows(session, ALICE, changes, s.services.clock())
        await session.flush()
        return [r.seq for r in rows if r.seq is not None]


@dataclass
class Receiver:
    url: str = ""
    up: bool = False
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def receiver(*, up: bool = False) -> AsyncIterator[Receiver]:
    """A webhook receiver that answers 503 while down and verifies every delivery while up."""
    state = Receiver(up=up)
    webhook = Webhook(SECRET)

    async def hook(request: web.Request) -> web.Response:
        if not state.up:
            return web.Response(status=503)
        raw = await request.read()
        webhook.verify(raw, dict(request.headers))  # raises (500) if the signature is wrong
        state.received.append((request.headers["webhook-id"], json.loads(raw)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_the_service_delivers_signed_webhooks_in_order(db_url: str, tmp_path: Path) -> None:
    """Three changes reach the receiver verified and in seq order; each delivery is recorded
    as sending (allowed) then delivered, under the same event id."""
    async with receiver(up=True) as hook, running_stack(
        db_url, tmp_path, webhook_url=hook.url, webhook_secret=SECRET, webhook_poll_seconds=0.05
    ) as s:  # fmt: skip
        received = hook.received
        changes = [Change(ChangeKind.MESSAGE_ADDED, "7", f"m{i}", f"t{i}") for i in range(3)]
        seqs = await _append(s, *changes)
        for _ in range(200):
            if len(received) >= 3:
                break
            await asyncio.sleep(0.05)
        assert [body["data"]["seq"] for _, body in received] == seqs
        assert [i for i, _ in received] == [f"msg_{ALICE}_{q}" for q in seqs]
        sending = await s.events(action=Action.WEBHOOK_SENDING)
        delivered = await s.events(action=Action.WEBHOOK_DELIVERED)
        assert [e.decision for e in sending] == [Decision.ALLOW] * 3
        assert [e.request_id for e in sending] == [i for i, _ in received]
        assert [e.request_id for e in delivered] == [i for i, _ in received]


async def test_without_a_url_nothing_is_delivered(db_url: str, tmp_path: Path) -> None:
    """No CONNECTOR_WEBHOOK_URL: the feed stays in the database, no delivery is attempted."""
    async with running_stack(db_url, tmp_path) as s:
        await _append(s, Change(ChangeKind.NEEDS_RELINK))
        await asyncio.sleep(0.2)
        assert await s.events(action=Action.WEBHOOK_SENDING) == []
