"""The live mailbox over the emulator's Gmail and Pub/Sub (SQLite and PostgreSQL): watches made
and renewed, notices pulled and acknowledged only once the feed holds their changes, the
polling fallback when push is lost, failures handed back to Pub/Sub, watch stopped on unlink."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from audit.vocab import Action, ActorKind, Purpose
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.mail_sync import SYNC_ACTOR, MailSync
from connector.accounts.store import LinkedAccount
from connector.accounts.sync_store import SyncState, SyncStore
from connector.accounts.unlink import Unlinker
from connector.emulator.state import Mailbox, Message
from connector.gmail import GmailClient
from connector.gmail.pubsub import PubSubClient
from connector.live.hooks import LiveHooks
from connector.live.polling import Poller, poll_due
from connector.live.ports import LocalLocks, Work
from connector.live.push import PushReceiver, covered
from connector.live.watches import WatchKeeper, expiry_of, watch_due
from connector.live.worker import LiveWorker, Schedule
from connector.policy.access import AccessContext
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.testing.memory import MemoryBasisFacts, MemoryUsageCounter
from tests.linking.conftest import HASH_KEY, Linking, link_account, link_config

RAW = b"From: x@example.com\r\nSubject: private words\r\n\r\nbody\r\n"
TOPIC = "projects/demo-project/topics/gmail"
SUBSCRIPTION = "projects/demo-project/subscriptions/connector"
CTX = AccessContext(SYNC_ACTOR, Purpose.USER_FEATURE)


async def _token() -> str:
    return "deployment-token"


class Live:
    def __init__(self, w: Linking) -> None:
        client = GmailClient(w.emu.gmail_endpoint, w.token_source(), w.session)
        self.gate = Gate(client, Recorder(w.audit), w.accounts, MemoryBasisFacts(),
                         MemoryUsageCounter(), hash_key=HASH_KEY)  # fmt: skip
        self.store = SyncStore(w.engine)
        self.sync = MailSync(self.gate, self.store)
        self.pubsub = PubSubClient(w.emu.pubsub_endpoint, _token, w.session)
        self.locks = LocalLocks()
        self.watches = WatchKeeper(self.gate, self.store, TOPIC, actor_context=CTX,
                                   locks=self.locks)  # fmt: skip
        self.runs: list[str] = []

    async def counted_sync(self, account_id: str, *, state: SyncState | None = None) -> object:
        self.runs.append(account_id)
        return await self.sync.sync(account_id, state=state)

    def receiver(self, w: Linking, **kwargs: Any) -> PushReceiver:
        kwargs.setdefault("sync", self.counted_sync)
        kwargs.setdefault("states", self.store.states)
        kwargs.setdefault("locks", self.locks)
        return PushReceiver(self.pubsub, SUBSCRIPTION, w.accounts, **kwargs)

    async def watched_account(self, w: Linking, login: str | None = None) -> LinkedAccount:
        """A newly linked account, its watch made and its baseline sync done."""
        account = await link_account(w, login=login)
        await self.watches.renew([account.id])
        await self.sync.sync(account.id)
        return account

    async def watched_with_mail(
        self, w: Linking, login: str | None = None
    ) -> tuple[LinkedAccount, Message]:
        """A watched account and a new inbox message its cursor has not seen (one notice)."""
        account = await self.watched_account(w, login)
        return account, _box(w, account.email).add_message(RAW, ["INBOX"])

    async def setup_pubsub(self) -> None:
        await self.pubsub.create_topic(TOPIC)
        await self.pubsub.create_subscription(SUBSCRIPTION, TOPIC, ack_deadline_seconds=10)


def _box(w: Linking, email: str | None) -> Mailbox:
    assert email is not None
    box = w.emu.state.mailbox(email)
    assert box is not None
    return box


async def _pull_until(receiver: PushReceiver, want: int, tries: int = 6) -> int:
    """Pull until `want` notices were acknowledged (the emulator may split deliveries)."""
    acked = 0
    for _ in range(tries):
        acked += (await receiver.pull_once()).acknowledged
        if acked >= want:
            break
    return acked


@pytest.fixture
async def live(linking: Linking) -> Live:
    wired = Live(linking)
    await wired.setup_pubsub()
    return wired


async def test_a_watch_is_made_then_mail_arrives_through_push_and_is_acked(
    linking: Linking, live: Live
) -> None:
    """users.watch is made through the gate and its expiry stored; new mail, a label change and
    a deletion are pulled as Gmail notices, synced into the feed in order, then acknowledged."""
    w = linking
    account = await link_account(w)
    assert await live.watches.renew([account.id]) == 1
    box = _box(w, account.email)
    assert box.watch is not None
    assert box.watch["topicName"] == TOPIC
    expires = (await live.store.state(account.id)).watch_expires_at
    assert expires is not None
    assert expires > datetime.now(UTC) + timedelta(days=6)
    assert await live.watches.renew([account.id]) == 0  # renewed today: not due again
    await live.sync.sync(account.id)  # the baseline
    msg = box.add_message(RAW, ["INBOX", "UNREAD"])
    box.modify(msg, ["STARRED"], [])
    box.delete_message(msg)
    receiver = live.receiver(w)
    assert await _pull_until(receiver, 3) == 3
    feed = [(c.change.kind, c.change.message_id) for c in await live.store.changes(account.id)]
    assert feed == [(ChangeKind.MESSAGE_ADDED, msg.id), (ChangeKind.LABELS_ADDED, msg.id),
                    (ChangeKind.MESSAGE_DELETED, msg.id)]  # fmt: skip
    assert (await receiver.pull_once()).received == 0  # nothing left: all were acknowledged
    watched = [e for e in w.audit.events if e.action is Action.GMAIL_WATCH]
    assert watched  # decided and recorded like any access, as the connector itself
    assert {(e.actor.kind, e.purpose) for e in watched} == {
        (ActorKind.SERVICE, Purpose.USER_FEATURE)
    }
    assert "private words" not in repr(w.audit.events)


async def test_a_notice_already_covered_by_the_cursor_is_acked_without_a_sync(
    linking: Linking, live: Live
) -> None:
    w = linking
    account, _msg = await live.watched_with_mail(w)
    await live.sync.sync(account.id)  # e.g. the poller got there first
    receiver = live.receiver(w)
    report = await receiver.pull_once()
    assert (report.received, report.acknowledged, report.synced) == (1, 1, 0)
    assert live.runs == []


async def test_a_failed_sync_hands_the_notice_back_and_it_is_settled_next_time(
    linking: Linking, live: Live
) -> None:
    """Nothing is acknowledged on hope: a sync that fails leaves the notice to Pub/Sub, which
    delivers it again; the change reaches the feed exactly once."""
    w = linking
    account, msg = await live.watched_with_mail(w)
    failures = [RuntimeError("Gmail is down")]

    async def flaky(account_id: str, *, state: SyncState | None = None) -> object:
        if failures:
            raise failures.pop()
        return await live.sync.sync(account_id, state=state)

    receiver = live.receiver(w, sync=flaky, retry_seconds=0)
    first = await receiver.pull_once()
    assert (first.received, first.acknowledged, first.retried) == (1, 0, 1)
    assert await live.store.changes(account.id) == []
    assert await _pull_until(receiver, 1) == 1
    feed = await live.store.changes(account.id)
    assert [(c.change.kind, c.change.message_id) for c in feed] == [
        (ChangeKind.MESSAGE_ADDED, msg.id)
    ]


async def test_a_notice_is_handed_back_while_another_task_syncs_the_account(
    linking: Linking, live: Live
) -> None:
    w = linking
    account, _msg = await live.watched_with_mail(w)
    receiver = live.receiver(w, retry_seconds=0)
    async with live.locks.hold(Work.SYNC, account.id) as mine:
        assert mine
        report = await receiver.pull_once()
        assert (report.acknowledged, report.retried) == (0, 1)
    assert await _pull_until(receiver, 1) == 1
    assert len(await live.store.changes(account.id)) == 1


async def test_notices_that_are_not_gmails_or_name_no_linked_account_are_acked(
    linking: Linking, live: Live
) -> None:
    w = linking
    stranger = b'{"emailAddress": "nobody@example.com", "historyId": 5}'
    w.emu.pubsub.publish(TOPIC, [(b"not json", {}), (stranger, {})])
    report = await live.receiver(w).pull_once()
    assert (report.received, report.acknowledged, report.ignored, report.retried) == (2, 2, 2, 0)
    assert (await live.receiver(w).pull_once()).received == 0


async def test_a_lapsed_watch_is_renewed_and_polling_catches_what_push_missed(
    linking: Linking, live: Live
) -> None:
    """Gmail stops publishing when a watch lapses (7 days without renewal): the safety-net poll
    still finds the change, and the keeper renews the watch once it is due."""
    w = linking
    account = await live.watched_account(w)
    box = _box(w, account.email)
    assert box.watch is not None
    box.watch["expiration"] = 1  # lapsed at Google
    await live.store.set_watch_expiry(account.id, datetime.now(UTC) + timedelta(hours=1))
    msg = box.add_message(RAW, ["INBOX"])
    assert (await live.receiver(w).pull_once()).received == 0  # nothing was published
    poller = Poller(w.accounts, live.sync.sync, live.store.states, every=timedelta(0))
    report = await poller.poll_once()
    assert (report.synced, report.failed) == (1, 0)
    assert [c.change.message_id for c in await live.store.changes(account.id)] == [msg.id]
    assert await live.watches.renew([account.id]) == 1
    assert box.watch is not None
    assert int(box.watch["expiration"]) > 1


async def test_the_poller_skips_accounts_synced_within_its_interval(
    linking: Linking, live: Live
) -> None:
    w = linking
    account = await link_account(w)
    await live.sync.sync(account.id)
    poller = Poller(w.accounts, live.counted_sync, live.store.states, every=timedelta(hours=1))
    assert (await poller.poll_once()).due == 0
    assert live.runs == []


async def test_unlink_stops_the_watch_before_revoking_the_grant(
    linking: Linking, live: Live
) -> None:
    w = linking
    account = await link_account(w)
    await live.watches.renew([account.id])
    box = _box(w, account.email)
    assert box.watch is not None
    hooks = LiveHooks()
    poller = Poller(w.accounts, live.sync.sync, live.store.states, every=timedelta(hours=1))
    hooks.attach(LiveWorker(w.accounts, poller, Schedule(timedelta(hours=1)), watches=live.watches))
    unlinker = Unlinker(w.engine, w.vault, link_config(w.emu).endpoints(w.session),
                        w.authority(), before_revoke=(hooks.before_revoke,))  # fmt: skip
    await unlinker.unlink(account.id, user_id="user-1")
    assert box.watch is None
    actions = [e.action for e in w.audit.events]
    assert actions.index(Action.GMAIL_WATCH_STOP) < actions.index(Action.ACCOUNT_UNLINKED)


async def test_the_worker_runs_its_loops_until_stopped(linking: Linking, live: Live) -> None:
    """Poll mode end to end: the worker's loop syncs a linked account's new mail into the feed
    without being asked, and stops promptly when told."""
    w = linking
    account = await link_account(w)
    await live.sync.sync(account.id)
    msg = _box(w, account.email).add_message(RAW, ["INBOX"])
    poller = Poller(w.accounts, live.sync.sync, live.store.states, every=timedelta(0))
    worker = LiveWorker(w.accounts, poller, Schedule(poll_every=timedelta(seconds=0.05)))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(100):
        if await live.store.changes(account.id):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert [c.change.message_id for c in await live.store.changes(account.id)] == [msg.id]


def test_watch_due_renews_daily_within_the_seven_day_lifetime() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    day = timedelta(days=1)
    assert watch_due(None, now, day)
    assert not watch_due(now + timedelta(days=6, hours=1), now, day)
    assert watch_due(now + timedelta(days=6), now, day)
    assert watch_due(now - day, now, day)


def test_expiry_is_read_from_gmails_millisecond_string() -> None:
    assert expiry_of({"expiration": "1767225600000"}) == datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry_of({"expiration": 1767225600000}) == datetime(2026, 1, 1, tzinfo=UTC)
    for bad in ({}, {"expiration": "soon"}, {"expiration": True}, {"expiration": -1}, []):
        assert expiry_of(bad) is None


def test_covered_and_poll_due_are_decided_from_the_stored_state() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert not covered(SyncState("a"), 5)
    assert covered(SyncState("a", history_id="7"), 7)
    assert not covered(SyncState("a", history_id="7"), 8)
    assert poll_due(SyncState("a"), now, timedelta(minutes=1))
    recent = SyncState("a", synced_at=now - timedelta(seconds=30))
    assert not poll_due(recent, now, timedelta(minutes=1))
    assert poll_due(recent, now, timedelta(seconds=30))


async def test_writers_of_one_accounts_feed_commit_in_turn(linking: Linking) -> None:
    """While another transaction holds the account (a sync committing), a second writer waits:
    the feed's seq order is its commit order, so a reader's cursor never passes a change that
    becomes visible later. (PostgreSQL row lock; SQLite has a single writer anyway.)"""
    w = linking
    if w.engine.url.get_backend_name() != "postgresql":
        pytest.skip("row locks: PostgreSQL (a SQLite database has one writer)")
    account = await link_account(w)
    store = SyncStore(w.engine)
    async with w.engine.connect() as other:
        transaction = await other.begin()
        await other.execute(
            text("SELECT id FROM accounts_account WHERE id = :id FOR UPDATE"), {"id": account.id}
        )
        writer = asyncio.create_task(store.append(account.id, [Change(ChangeKind.SENDING_PAUSED)]))
        await asyncio.sleep(0.3)
        assert not writer.done()  # waiting for the account's lock
        await transaction.commit()
    assert len(await asyncio.wait_for(writer, timeout=5)) == 1


async def test_one_pull_looks_its_addresses_up_at_once(linking: Linking, live: Live) -> None:
    """Several notices for one mailbox in one pull: one directory lookup, one sync, all acked."""
    w = linking
    account = await live.watched_account(w)
    box = _box(w, account.email)
    for _ in range(3):
        box.add_message(RAW, ["INBOX"])
    lookups: list[set[str]] = []

    class Counting:
        async def active_ids(self, email: str | None = None) -> list[str]:
            raise AssertionError("one lookup a pull, not one a notice")

        async def active_by_address(self, emails: Collection[str]) -> dict[str, list[str]]:
            lookups.append(set(emails))
            return await w.accounts.active_by_address(emails)

    receiver = PushReceiver(live.pubsub, SUBSCRIPTION, Counting(), live.counted_sync,
                            live.store.states, locks=live.locks)  # fmt: skip
    report = await receiver.pull_once()
    assert (report.received, report.acknowledged, report.synced) == (3, 3, 1)
    assert lookups == [{account.email}]
    assert live.runs == [account.id]
