"""How soon a notice that could not be settled comes back: a notice whose account another task or
instance is syncing right now is handed back for a second or so (the other run ends soon, and
waiting the failure delay put a 10 s step into push latency); one whose sync failed waits the
longer retry delay, so a failing Gmail is not hammered."""

from __future__ import annotations

import asyncio

import pytest

from connector.live.ports import Work
from tests.linking.conftest import Linking, link_account
from tests.linking.test_live_mailbox import RAW, Live, _box


@pytest.fixture
async def live(linking: Linking) -> Live:
    wired = Live(linking)
    await wired.setup_pubsub()
    return wired


async def _ready(w: Linking, live: Live) -> str:
    account = await link_account(w)
    await live.watches.renew([account.id])
    await live.sync.sync(account.id)
    _box(w, account.email).add_message(RAW, ["INBOX"])
    return account.id


async def test_a_notice_for_an_account_being_synced_elsewhere_comes_back_within_seconds(
    linking: Linking, live: Live
) -> None:
    account_id = await _ready(linking, live)
    receiver = live.receiver(linking, retry_seconds=30, held_seconds=1)
    async with live.locks.hold(Work.SYNC, account_id) as mine:
        assert mine
        report = await receiver.pull_once()
    assert (report.acknowledged, report.retried) == (0, 1)
    await asyncio.sleep(1.3)
    again = await receiver.pull_once()
    assert (again.received, again.acknowledged) == (1, 1)
    assert len(await live.store.changes(account_id)) == 1


async def test_a_notice_whose_sync_failed_waits_the_retry_delay(
    linking: Linking, live: Live
) -> None:
    await _ready(linking, live)

    async def failing(_account_id: str) -> object:
        raise RuntimeError("Gmail is down")

    receiver = live.receiver(linking, sync=failing, retry_seconds=30, held_seconds=1)
    report = await receiver.pull_once()
    assert (report.acknowledged, report.retried) == (0, 1)
    await asyncio.sleep(1.3)
    assert (await receiver.pull_once()).received == 0  # still away: 30 s, not 1 s
