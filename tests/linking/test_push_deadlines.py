"""How soon a notice that could not be settled comes back: a notice whose account another task or
instance is syncing right now is handed back for a second or so (the other run ends soon, and
waiting the failure delay put a 10 s step into push latency); one whose sync failed waits the
longer retry delay, so a failing Gmail is not hammered. And how a pull's notices are settled: in
turns within the process, as one batch of locks and state reads across accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

import pytest

from connector.accounts.changes import ChangeKind
from connector.accounts.sync_store import SyncState
from connector.live.attempt import Attempt
from connector.live.polling import Poller
from connector.live.ports import LocalLocks, Work
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
    receiver = live.receiver(linking, retry_seconds=30, held_seconds=1, held_patience=0.3)
    async with live.locks.hold(Work.SYNC, account_id) as mine:
        assert mine
        report = await receiver.pull_once()
    assert (report.acknowledged, report.retried) == (0, 1)
    await asyncio.sleep(1.3)
    again = await receiver.pull_once()
    assert (again.received, again.acknowledged) == (1, 1)
    assert len(await live.store.changes(account_id)) == 1


async def test_a_notice_for_an_account_synced_elsewhere_is_settled_when_that_run_ends(
    linking: Linking, live: Live
) -> None:
    """The other instance's run usually ends within a fraction of a second and covers the
    notice: the pull asks again a few times before handing the notice back, so the notice is
    acknowledged without the hand-back's second of redelivery delay, and without a second sync
    (the other run's cursor covers it)."""
    account_id = await _ready(linking, live)
    receiver = live.receiver(linking, held_seconds=30, held_patience=5.0)
    holding = asyncio.Event()

    async def elsewhere() -> None:
        async with live.locks.hold(Work.SYNC, account_id) as mine:
            assert mine
            holding.set()
            await asyncio.sleep(0.3)
            await live.sync.sync(account_id)

    other = asyncio.create_task(elsewhere())
    await holding.wait()
    live.runs.clear()
    report = await receiver.pull_once()
    await other
    assert (report.received, report.acknowledged, report.retried) == (1, 1, 0)
    assert report.synced == 0
    assert live.runs == []
    assert len(await live.store.changes(account_id)) == 1


async def test_a_notice_with_a_failed_account_is_handed_back_without_waiting_on_a_held_one(
    linking: Linking, live: Live
) -> None:
    """One mailbox linked by two platform users: its notice needs both accounts. One's sync
    failed, the other is held elsewhere: the notice waits the failure's retry delay, and the
    pull does not spend its patience asking for the held account first."""
    login = linking.emu.users[0]
    first = await link_account(linking, user_id="user-1", login=login)
    second = await link_account(linking, user_id="user-2", login=login)
    for account in (first, second):
        await live.watches.renew([account.id])
        await live.sync.sync(account.id)
    _box(linking, first.email).add_message(RAW, ["INBOX"])

    async def failing_second(account_id: str, *, state: SyncState | None = None) -> object:
        if account_id == second.id:
            raise RuntimeError("Gmail is down")
        return await live.sync.sync(account_id, state=state)

    receiver = live.receiver(linking, sync=failing_second, retry_seconds=30, held_seconds=1,
                             held_patience=5.0)  # fmt: skip
    loop = asyncio.get_running_loop()
    async with live.locks.hold(Work.SYNC, first.id) as mine:
        assert mine
        started = loop.time()
        report = await receiver.pull_once()
    assert loop.time() - started < 2.0
    assert (report.received, report.acknowledged, report.retried) == (1, 0, 1)
    await asyncio.sleep(1.3)
    assert (await receiver.pull_once()).received == 0  # the failure's 30 s, not the held 1 s


async def test_a_notice_whose_sync_failed_waits_the_retry_delay(
    linking: Linking, live: Live
) -> None:
    await _ready(linking, live)

    async def failing(_account_id: str, *, state: SyncState | None = None) -> object:
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
    poller = Poller(linking.accounts, live.sync.sync, live.store.states,
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


class _CountingLocks:
    """Real in-process locks that also record how they were asked for."""

    def __init__(self, inner: LocalLocks) -> None:
        self.inner = inner
        self.batches: list[set[str]] = []
        self.singles: list[str] = []

    def hold(self, work: Work, account_id: str) -> AbstractAsyncContextManager[bool]:
        self.singles.append(account_id)
        return self.inner.hold(work, account_id)

    def hold_many(
        self, work: Work, account_ids: Collection[str]
    ) -> AbstractAsyncContextManager[set[str]]:
        self.batches.append(set(account_ids))
        return self.inner.hold_many(work, account_ids)


async def test_a_pull_settles_its_accounts_as_one_batch(linking: Linking, live: Live) -> None:
    """Notices for several accounts in one pull: their locks are claimed once and their states
    read once, under the locks, for the accounts claimed; the account another instance is
    syncing is handed back, the other is synced and acknowledged."""
    accounts = [(await live.watched_with_mail(linking, login))[0].id
                for login in linking.emu.users[:2]]  # fmt: skip
    free, busy = accounts
    locks = _CountingLocks(live.locks)
    reads: list[set[str]] = []

    async def states(account_ids: Collection[str]) -> Mapping[str, SyncState]:
        reads.append(set(account_ids))
        return await live.store.states(account_ids)

    receiver = live.receiver(linking, locks=locks, states=states, held_seconds=30,
                             held_patience=0)  # fmt: skip
    async with live.locks.hold(Work.SYNC, busy) as mine:
        assert mine
        report = await receiver.pull_once()
    assert (report.received, report.acknowledged, report.retried, report.synced) == (2, 1, 1, 1)
    assert locks.batches == [set(accounts)]
    assert locks.singles == []
    assert reads == [{free}]
    assert [c.change.kind for c in await live.store.changes(free)] == [ChangeKind.MESSAGE_ADDED]
    assert await live.store.changes(busy) == []


async def test_states_of_several_accounts_in_one_read(linking: Linking, live: Live) -> None:
    synced = await live.watched_account(linking)
    states = await live.store.states([synced.id, "never-synced"])
    assert states["never-synced"] == SyncState("never-synced")
    assert states[synced.id] == await live.store.state(synced.id)
    assert states[synced.id].history_id is not None
    assert await live.store.states([]) == {}


async def test_the_poller_reads_and_claims_its_accounts_in_batches(
    linking: Linking, live: Live
) -> None:
    """A poll round reads states a batch at a time (not one statement per account), leaves out
    what is not due, and claims the due accounts' locks together."""
    accounts = [(await live.watched_with_mail(linking, login))[0].id
                for login in linking.emu.users[:2]]  # fmt: skip
    locks = _CountingLocks(live.locks)
    reads: list[set[str]] = []

    async def states(account_ids: Collection[str]) -> Mapping[str, SyncState]:
        reads.append(set(account_ids))
        return await live.store.states(account_ids)

    poller = Poller(linking.accounts, live.sync.sync, states, every=timedelta(0), locks=locks)
    report = await poller.poll_once()
    assert (report.due, report.synced, report.failed) == (2, 2, 0)
    assert reads == [set(accounts), set(accounts)]  # to choose, then under the locks
    assert locks.batches == [set(accounts)]
    assert locks.singles == []
    for account_id in accounts:
        assert len(await live.store.changes(account_id)) == 1
    reads.clear()
    idle = Poller(linking.accounts, live.sync.sync, states, every=timedelta(hours=1),
                  locks=locks)  # fmt: skip
    assert (await idle.poll_once()).due == 0
    assert reads == [set(accounts)]  # nothing due: no locks, no second read
    assert locks.batches == [set(accounts)]


async def test_a_pull_gives_back_its_accounts_while_it_waits_for_another_pulls(
    linking: Linking, live: Live
) -> None:
    """A pull waiting for an account another pull is settling has already let go of the
    accounts it settled itself. Kept until the whole pull ended, two pulls each waiting for an
    account the other kept hung for good, and every later notice for those accounts with them
    (bench_changes lost 1,122 of 4,000 changes that way)."""
    ran: list[str] = []
    hold_y = asyncio.Event()

    async def sync(account_id: str, *, state: SyncState | None = None) -> object:
        ran.append(account_id)
        if account_id == "y":
            await hold_y.wait()
        return None

    async def states(account_ids: Collection[str]) -> Mapping[str, SyncState]:
        return {a: SyncState(a) for a in account_ids}  # never synced: every notice is due

    receiver = live.receiver(linking, sync=sync, states=states)
    first = asyncio.create_task(receiver._settle_all({"y": 5}))
    await asyncio.sleep(0.05)  # y is the first pull's now, its run waiting
    second = asyncio.create_task(receiver._settle_all({"x": 5, "y": 5}))
    await asyncio.sleep(0.05)  # x settled; the second pull waits for y
    assert not second.done()
    third = await asyncio.wait_for(receiver._settle_all({"x": 6}), 2)  # x is free again
    assert third == {"x": Attempt.SYNCED}
    hold_y.set()
    assert await asyncio.wait_for(first, 2) == {"y": Attempt.SYNCED}
    assert await asyncio.wait_for(second, 2) == {"x": Attempt.SYNCED, "y": Attempt.SYNCED}
    assert ran == ["y", "x", "x", "y"]
