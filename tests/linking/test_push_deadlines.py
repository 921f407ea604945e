"""How soon a notice that could not be settled comes back: a notice whose account another task or
instance is syncing right now is handed back for a second or so (the other run ends soon, and
waiting the failure delay put a 10 s step into push latency); one whose sync failed waits the
longer retry delay, so a failing Gmail is not hammered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from connector.live.polling import Poller
from connector.live.ports import Work
from connector.live.worker import LiveWorker, Schedule
from tests.linking.conftest import Linking, link_account
from tests.linking.test_live_mailbox import RAW, SUBSCRIPTION, Live, _box


@pytest.fixture
async def live(linking: Linking) -> Live:
    wired = Live(linking)
    await wired.setup_pubsub()
    return wired


async def _ready(w: Linking, live: Live, messages: int = 1) -> str:
    account = await link_account(w)
    await live.watches.renew([account.id])
    await live.sync.sync(account.id)
    for _ in range(messages):
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


async def test_concurrent_pulls_with_notices_for_one_account_take_turns_not_hand_back(
    linking: Linking, live: Live
) -> None:
    """Several pulls are in flight at once (throughput); two of them holding notices for one
    account wait their turn in this process instead of handing one back: the second finds the
    feed already covers its notice and is acknowledged without a second sync."""
    account_id = await _ready(linking, live, messages=2)
    receiver = live.receiver(linking, max_messages=1, retry_seconds=30, held_seconds=30)
    live.runs.clear()
    reports = await asyncio.gather(receiver.pull_once(), receiver.pull_once())
    assert sum(r.received for r in reports) == 2
    assert sum(r.acknowledged for r in reports) == 2
    assert sum(r.retried for r in reports) == 0
    assert live.runs == [account_id]


async def test_the_worker_keeps_several_pulls_in_flight(linking: Linking, live: Live) -> None:
    """With push, the worker runs `pullers` pull loops side by side, and a notice still
    reaches the feed once and is acknowledged."""
    account_id = await _ready(linking, live, messages=3)
    poller = Poller(linking.accounts, live.sync.sync, live.store.state,
                    every=timedelta(hours=1), locks=live.locks)  # fmt: skip
    receiver = live.receiver(linking, max_messages=1)
    worker = LiveWorker(linking.accounts, poller, Schedule(timedelta(hours=1), pullers=3),
                        receiver=receiver)  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.2)
        pulls = [t for t in asyncio.all_tasks() if t.get_name().startswith("live-push-")]
        assert len(pulls) == 3
        async with asyncio.timeout(10):
            while len(await live.store.changes(account_id)) < 3:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert len(await live.store.changes(account_id)) == 3
    sub = linking.emu.pubsub.subscription(SUBSCRIPTION)
    assert not sub.backlog  # every notice acknowledged
    assert not sub.leases
