"""Webhook delivery from the change feed to a real receiver on a loopback port, on SQLite and
PostgreSQL: order, signatures checked with the reference library, retries, dead letters,
refusals and the audit trail of every attempt."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from audit.memory import MemoryAuditLog
from audit.vocab import Action, ActorKind, Decision, Outcome, Purpose
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.models import AccountRow
from connector.accounts.sync_store import SyncStore
from connector.db import create_engine, migrate, session_factory
from connector.delivery.dispatcher import DeliveryConfig, Dispatcher, SingleInstance
from connector.delivery.models import DeadLetterStatus
from connector.delivery.store import DeadLetter, DeliveryPurger, DeliveryStore
from connector.errors import AccessDenied, RedeliveryInProgressError
from connector.policy.authority import Authority
from connector.policy.recorder import Recorder
from connector.policy.vocab import Reason
from connector.testing.memory import StaticAccountOwners
from tests.conftest import Clock

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Receiver:
    """The platform's endpoint: verifies with the reference library, answers `status`."""

    status: int = 204
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    bad: int = 0
    verify: bool = True
    delay: float = 0.0  # seconds before answering

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        await asyncio.sleep(self.delay)
        if self.status >= 300:
            return web.Response(status=self.status)
        headers = dict(request.headers)
        if self.verify:
            try:
                Webhook(SECRET).verify(raw, headers)
            except Exception:
                self.bad += 1
                return web.Response(status=400)
        self.received.append((headers, json.loads(raw)))
        return web.Response(status=self.status)

    def seqs(self) -> list[int]:
        return [body["data"]["seq"] for _, body in self.received]


@dataclass
class Stack:
    dispatcher: Dispatcher
    feed: SyncStore
    log: MemoryAuditLog
    clock: Clock
    receiver: Receiver
    owners: StaticAccountOwners

    def actions(self) -> list[Action]:
        return [e.action for e in self.log.events]


def _account(account_id: str, now: datetime) -> AccountRow:
    return AccountRow(
        id=account_id, owner_user_id=f"user-{account_id}", status="active", scopes=[],
        refresh_token_sealed="sealed", linked_at=now, updated_at=now,
    )  # fmt: skip


def _added(message_id: str) -> Change:
    return Change(ChangeKind.MESSAGE_ADDED, "100", message_id, f"t-{message_id}")


@pytest.fixture
async def stack(db_url: str) -> AsyncIterator[Stack]:
    engine = create_engine(db_url)
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        await migrate(engine)
        clock = Clock(datetime.now(UTC).replace(microsecond=0))
        async with session_factory(engine)() as session, session.begin():
            session.add_all([_account("acc-a", clock.now), _account("acc-b", clock.now)])
        log = MemoryAuditLog()
        owners = StaticAccountOwners({"acc-a": "user-acc-a", "acc-b": "user-acc-b"})
        authority = Authority(Recorder(log, clock), owners, clock)
        feed = SyncStore(engine, clock=clock)
        config = DeliveryConfig(url, SECRET, horizon=timedelta(hours=24),
                                backoff_base=timedelta(seconds=10),
                                backoff_cap=timedelta(minutes=5), timeout_seconds=2.0)  # fmt: skip
        async with aiohttp.ClientSession() as http:
            dispatcher = Dispatcher(config, DeliveryStore(engine), feed, authority, http,
                                    clock=clock, rand=lambda: 1.0)  # fmt: skip
            yield Stack(dispatcher, feed, log, clock, receiver, owners)
    finally:
        await runner.cleanup()
        await engine.dispose()


async def test_changes_arrive_in_order_signed_and_audited(stack: Stack) -> None:
    """Each account's changes arrive in seq order, verified by the reference library, ids only;
    each POST is preceded by its durable TRANSFER record and followed by its outcome."""
    a = await stack.feed.append("acc-a", [_added("m1"), _added("m2")])
    b = await stack.feed.append("acc-b", [_added("m9")])
    a += await stack.feed.append("acc-a", [Change(ChangeKind.NEEDS_RELINK)])

    counts = await stack.dispatcher.run_once()

    assert (counts.delivered, counts.failed, counts.refused) == (4, 0, 0)
    assert stack.receiver.bad == 0
    by_account: dict[str, list[int]] = {}
    for headers, body in stack.receiver.received:
        data = body["data"]
        by_account.setdefault(data["accountId"], []).append(data["seq"])
        assert headers["webhook-id"] == f"msg_{data['accountId']}_{data['seq']}"
        assert set(data["change"]) <= {"seq", "kind", "historyId", "messageId", "threadId",
                                       "labelIds", "messageIds", "at"}  # fmt: skip
    assert by_account == {"acc-a": a, "acc-b": b}
    kinds = [body["data"]["change"]["kind"] for _, body in stack.receiver.received
             if body["data"]["accountId"] == "acc-a"]  # fmt: skip
    assert kinds == ["message_added", "message_added", "needs_relink"]
    assert stack.actions().count(Action.WEBHOOK_SENDING) == 4
    assert stack.actions().count(Action.WEBHOOK_DELIVERED) == 4
    by_event: dict[str | None, list[Action]] = {}
    for event in stack.log.events:  # accounts are served concurrently: their events interleave
        by_event.setdefault(event.request_id, []).append(event.action)
        assert (event.actor.kind, event.actor.id) == (ActorKind.SERVICE, "connector-delivery")
        assert event.purpose is Purpose.USER_FEATURE
    sent = {h["webhook-id"] for h, _ in stack.receiver.received}
    assert by_event == dict.fromkeys(sent, [Action.WEBHOOK_SENDING, Action.WEBHOOK_DELIVERED])
    assert (await stack.dispatcher.run_once()).delivered == 0  # nothing is sent twice
    assert (await stack.log.verify()).ok


async def test_receiver_down_then_up_retries_with_the_same_id(stack: Stack) -> None:
    """A 503 is retried after the backoff (not before), then delivered with the same webhook-id;
    the next change waits behind it; every attempt leaves a sending and an outcome event."""
    seqs = await stack.feed.append("acc-a", [_added("m1"), _added("m2")])
    stack.receiver.status = 503
    first = await stack.dispatcher.run_once()
    assert (first.delivered, first.failed) == (0, 1)
    assert (await stack.dispatcher.run_once()).failed == 0  # backoff: not due yet
    stack.clock.now += timedelta(seconds=10)  # base 10 s, jitter factor 1.0
    assert (await stack.dispatcher.run_once()).failed == 1
    stack.clock.now += timedelta(seconds=19)
    assert (await stack.dispatcher.run_once()).failed == 0  # second wait is 20 s
    stack.receiver.status = 204
    stack.clock.now += timedelta(seconds=1)
    done = await stack.dispatcher.run_once()
    assert (done.delivered, done.failed) == (2, 0)
    assert stack.receiver.seqs() == seqs
    assert stack.receiver.received[0][0]["webhook-id"] == f"msg_acc-a_{seqs[0]}"
    failed = [e for e in stack.log.events if e.action is Action.WEBHOOK_FAILED]
    assert [(e.error_code, e.outcome) for e in failed] == [("http.503", Outcome.ERROR)] * 2
    assert {e.request_id for e in failed} == {f"msg_acc-a_{seqs[0]}"}
    assert stack.actions().count(Action.WEBHOOK_SENDING) == 4  # 2 failed + 2 delivered


async def test_after_the_horizon_a_change_is_dead_lettered_and_redelivered(stack: Stack) -> None:
    """Past the horizon the change becomes a dead letter, the account goes on with the next;
    the dead letter is listed and redelivered later with the same event id."""
    seqs = await stack.feed.append("acc-a", [_added("m1"), _added("m2")])
    stack.receiver.status = 500
    stack.receiver.verify = False  # the clock is moved a day away from the wall clock
    await stack.dispatcher.run_once()
    stack.clock.now += timedelta(hours=24)
    counts = await stack.dispatcher.run_once()
    assert (counts.dead_lettered, counts.failed) == (1, 2)  # m1 given up, m2 tried at once
    stack.receiver.status = 204
    stack.clock.now += timedelta(seconds=10)
    assert (await stack.dispatcher.run_once()).delivered == 1
    assert stack.receiver.seqs() == [seqs[1]]  # the account went on

    letters = await stack.dispatcher.store.dead_letters()
    assert [(d.id, d.seq, d.kind, d.attempts, d.last_error) for d in letters] == [
        (f"msg_acc-a_{seqs[0]}", seqs[0], "message_added", 2, "http.500")
    ]
    dead = [e for e in stack.log.events if e.action is Action.WEBHOOK_DEAD_LETTERED]
    assert [e.request_id for e in dead] == [letters[0].id]

    assert await stack.dispatcher.redeliver(letters[0]) is None
    headers, body = stack.receiver.received[-1]
    assert headers["webhook-id"] == letters[0].id
    assert body["data"]["change"]["messageId"] == "m1"
    assert await stack.dispatcher.store.dead_letters() == []
    again = await stack.dispatcher.store.dead_letter_by_id(letters[0].id)
    assert again is not None
    assert again.status is DeadLetterStatus.REDELIVERED
    assert again.redelivered_at == stack.clock.now


async def test_a_refused_transfer_is_recorded_and_nothing_is_sent(stack: Stack) -> None:
    """When the policy refuses (the account is unknown to it), the refusal is recorded, no
    request reaches the receiver, and the change is dead-lettered as refused."""
    seqs = await stack.feed.append("acc-b", [_added("m1")])
    stack.owners.owners.pop("acc-b")
    counts = await stack.dispatcher.run_once()
    assert (counts.refused, counts.delivered) == (1, 0)
    assert stack.receiver.received == []
    [refusal] = stack.log.events
    assert (refusal.action, refusal.decision) == (Action.WEBHOOK_SENDING, Decision.DENY)
    assert Reason.ACCOUNT_UNKNOWN.value in refusal.reasons
    [letter] = await stack.dispatcher.store.dead_letters()
    assert (letter.seq, letter.last_error) == (seqs[0], "policy.denied")


async def test_ownership_decides_which_accounts_this_instance_delivers(stack: Stack) -> None:
    """An account this instance does not own is left alone (no attempt, no record)."""
    await stack.feed.append("acc-a", [_added("m1")])
    await stack.feed.append("acc-b", [_added("m2")])

    class OnlyA(SingleInstance):
        async def __call__(self, account_ids: Sequence[str]) -> set[str]:
            return {a for a in account_ids if a == "acc-a"}

    stack.dispatcher.ownership = OnlyA()
    assert (await stack.dispatcher.run_once()).delivered == 1
    assert [b["data"]["accountId"] for _, b in stack.receiver.received] == ["acc-a"]


async def test_unlinking_purges_the_accounts_delivery_rows(stack: Stack) -> None:
    """The unlink purger deletes the account's cursor and dead letters, no other account's."""
    await stack.feed.append("acc-a", [_added("m1")])
    await stack.feed.append("acc-b", [_added("m2")])
    stack.receiver.status = 500
    await stack.dispatcher.run_once()
    stack.clock.now += timedelta(hours=25)
    assert (await stack.dispatcher.run_once()).dead_lettered == 2
    engine = stack.dispatcher.store.engine
    async with session_factory(engine)() as session, session.begin():
        counts = await DeliveryPurger().purge(session, "acc-a")
    assert counts == {"delivery_cursor": 1, "delivery_dead_letter": 1}
    assert [d.account_id for d in await stack.dispatcher.store.dead_letters()] == ["acc-b"]
    assert (await stack.dispatcher.store.cursor("acc-a")).delivered_seq == 0


async def test_no_data_leaves_when_the_transfer_cannot_be_recorded(stack: Stack) -> None:
    """The audit log refusing the record: nothing is POSTed, the change waits for the next run,
    and is delivered (once) when the log is back."""
    [seq] = await stack.feed.append("acc-a", [_added("m1")])
    original = stack.log.append

    async def unavailable(event: Any) -> Any:
        raise OSError("audit store is down")

    stack.log.append = unavailable  # type: ignore[method-assign]
    counts = await stack.dispatcher.run_once()
    assert (counts.errors, counts.delivered) == (1, 0)
    assert stack.receiver.received == []
    stack.log.append = original  # type: ignore[method-assign]
    assert (await stack.dispatcher.run_once()).delivered == 1
    assert stack.receiver.seqs() == [seq]


async def test_a_running_dispatcher_delivers_a_commit_at_once_not_at_the_next_poll(
    stack: Stack,
) -> None:
    """The dispatcher sleeps the poll interval between runs, but a change committed to the feed
    wakes it: here the poll is 60 s and the change arrives within a second or two."""
    d = stack.dispatcher
    d.config = replace(d.config, poll_seconds=60.0)
    stop = asyncio.Event()
    running = asyncio.create_task(d.run(stop))
    try:
        await asyncio.sleep(0.3)  # the first run found nothing; now it sleeps
        await stack.feed.append("acc-a", [_added("m1")])
        async with asyncio.timeout(5):
            while not stack.receiver.received:
                await asyncio.sleep(0.02)
        assert len(stack.receiver.received) == 1
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)


async def test_unlinked_reaches_the_platform_after_the_account_is_purged(stack: Stack) -> None:
    """The `unlinked` event is sent after the purge, when the account has no owner any more: it
    is decided as an ACCOUNT_NOTICE (account id and kind only), delivered, and recorded; a change
    that carries Gmail ids for an account gone is still refused as a TRANSFER."""
    await stack.feed.append("acc-a", [Change(ChangeKind.UNLINKED)])
    await stack.feed.append("acc-b", [_added("m1")])
    stack.owners.owners.clear()  # both purged: no owner is known any more
    counts = await stack.dispatcher.run_once()
    assert (counts.delivered, counts.refused) == (1, 1)
    [(_headers, body)] = stack.receiver.received
    assert (body["data"]["accountId"], body["data"]["change"]["kind"]) == ("acc-a", "unlinked")

    def of(account_id: str) -> list[tuple[Action, Decision]]:
        return [(e.action, e.decision) for e in stack.log.events if e.account_id == account_id]

    assert of("acc-a") == [
        (Action.WEBHOOK_SENDING, Decision.ALLOW),  # durable before the POST
        (Action.WEBHOOK_DELIVERED, Decision.ALLOW),
    ]
    assert of("acc-b") == [(Action.WEBHOOK_SENDING, Decision.DENY)]
    [refusal] = [e for e in stack.log.events if e.account_id == "acc-b"]
    assert Reason.ACCOUNT_UNKNOWN.value in refusal.reasons


async def _one_dead_letter(stack: Stack) -> DeadLetter:
    await stack.feed.append("acc-a", [_added("m1")])
    stack.receiver.status = 500
    stack.receiver.verify = False  # the clock is moved a day away from the wall clock
    await stack.dispatcher.run_once()
    stack.clock.now += timedelta(hours=24)
    await stack.dispatcher.run_once()
    [letter] = await stack.dispatcher.store.dead_letters()
    stack.receiver.status = 204
    return letter


async def test_two_redeliveries_of_one_dead_letter_at_once_send_it_once(stack: Stack) -> None:
    """Two admins press "redeliver" together: one claim wins and sends, the other is told the
    letter is being redelivered; nothing is sent twice."""
    letter = await _one_dead_letter(stack)
    stack.receiver.delay = 0.3  # both attempts overlap while the first POST is in flight
    results = await asyncio.gather(
        stack.dispatcher.redeliver(letter), stack.dispatcher.redeliver(letter),
        return_exceptions=True,
    )  # fmt: skip
    assert sorted(map(repr, results)) == sorted(
        [repr(None), repr(RedeliveryInProgressError(letter.id))]
    )
    assert len(stack.receiver.received) == 1
    done = await stack.dispatcher.store.dead_letter_by_id(letter.id)
    assert done is not None
    assert done.status is DeadLetterStatus.REDELIVERED


async def test_a_redelivery_refused_or_abandoned_leaves_the_letter_dead(stack: Stack) -> None:
    """A refused redelivery puts the letter back (dead, for a later try); so does a claim whose
    holder died mid-attempt, once it is stale."""
    letter = await _one_dead_letter(stack)
    stack.owners.owners.clear()  # the policy refuses now
    with pytest.raises(AccessDenied):
        await stack.dispatcher.redeliver(letter)
    again = await stack.dispatcher.store.dead_letter_by_id(letter.id)
    assert again is not None
    assert again.status is DeadLetterStatus.DEAD
    store, now = stack.dispatcher.store, stack.clock.now
    assert await store.claim_redelivery(letter.id, now, timedelta(seconds=60))  # then dies
    assert not await store.claim_redelivery(letter.id, now + timedelta(seconds=59),
                                            timedelta(seconds=60))  # fmt: skip
    assert await store.claim_redelivery(letter.id, now + timedelta(seconds=61),
                                        timedelta(seconds=60))  # fmt: skip


async def test_between_full_scans_only_the_recent_feed_is_read(stack: Stack) -> None:
    """A change below the scan floor (committed late, or left behind) is not seen by the
    windowed scans but by the next full one; a retry is found by name whatever its seq."""
    d = stack.dispatcher
    assert (await d.run_once()).delivered == 0  # the first, full scan: nothing yet
    d._window.floor = 10_000  # as if the feed had moved far on since this change took its seq
    await stack.feed.append("acc-a", [_added("m1")])
    assert (await d.run_once()).delivered == 0  # above the floor only: not seen
    stack.clock.now += d._window.full_every
    stack.receiver.verify = False  # the clock is moved away from the wall clock
    assert (await d.run_once()).delivered == 1  # the full scan finds it

    stack.receiver.status = 500
    await stack.feed.append("acc-b", [_added("m2")])
    assert (await d.run_once()).failed == 1
    d._window.floor = 10_000
    stack.receiver.status = 204
    stack.clock.now += timedelta(minutes=5)  # past the backoff, inside the full-scan period
    d._window.last_full = stack.clock.now
    assert (await d.run_once()).delivered == 1  # the retry, asked for by name


async def test_an_account_with_more_than_a_run_takes_goes_on_next_run(stack: Stack) -> None:
    d = stack.dispatcher
    d.config = replace(d.config, changes_per_account=2)
    await stack.feed.append("acc-a", [_added(f"m{i}") for i in range(5)])
    assert (await d.run_once()).delivered == 2
    d._window.floor = 10_000  # the rest lies below any floor: asked for by name
    assert (await d.run_once()).delivered == 2
    assert (await d.run_once()).delivered == 1
    assert len(stack.receiver.received) == 5
