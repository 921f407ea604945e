"""The live mailbox inside the running service (the demo's stack: `connector serve`'s app on
SQLite, push through the emulator's Pub/Sub): linking makes a watch, new mail reaches the
account's change feed with no request from anyone, unlinking stops the watch."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connector.accounts.changes import ChangeKind
from connector.accounts.sync_store import SyncStore
from connector.db import create_engine
from connector.demo import running_demo
from connector.emulator.state import Mailbox

RAW = b"From: carol@example.com\r\nSubject: live\r\n\r\nhello\r\n"


async def _until(check: object, timeout: float = 15.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_new_mail_reaches_the_feed_by_push_and_unlink_stops_the_watch(
    tmp_path: Path,
) -> None:
    async with running_demo(tmp_path / "demo", 0) as demo:
        boxes: list[Mailbox] = []

        async def watched() -> bool:
            boxes[:] = [b for b in demo.emu.state.mailboxes.values() if b.watch is not None]
            return bool(boxes)

        await _until(watched)  # the worker made alice's watch after the link
        [box] = boxes
        engine = create_engine(demo.settings.database_url)
        try:
            store = SyncStore(engine)

            async def baselined() -> bool:
                return (await store.state(demo.account_id)).history_id is not None

            await _until(baselined)
            message = box.add_message(RAW, ["INBOX", "UNREAD"])

            async def arrived() -> bool:
                feed = await store.changes(demo.account_id)
                return [(c.change.kind, c.change.message_id) for c in feed] == [
                    (ChangeKind.MESSAGE_ADDED, message.id)
                ]

            await _until(arrived, timeout=10)
            assert demo.emu.pubsub.subscriptions  # and nothing is left unacknowledged:
            [sub] = demo.emu.pubsub.subscriptions.values()
            await _until(lambda: _settled(sub))
            status, _receipt = await demo.call("DELETE", f"/v1/accounts/{demo.account_id}", "alice")
            assert status == 200
            assert box.watch is None
        finally:
            await engine.dispose()


async def _settled(sub: object) -> bool:
    return not getattr(sub, "backlog") and not getattr(sub, "leases")
