"""The Idempotency-Key store pinned: each rule from a live record with one change, both sides of
each time limit, on the in-memory store and on SQLite (PostgreSQL is covered by
tests/test_send_keys.py under scripts/test.sh).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.db import session_factory
from connector.inbox.send_keys import (
    PENDING_STALE,
    RECORD_TTL,
    Claim,
    ClaimOutcome,
    KeyRecord,
    KeyState,
    SendKey,
    SendKeys,
    SendKeysPurger,
    SqlSendKeys,
    ids_only,
)
from connector.testing.send_keys import MemorySendKeys
from tests.conftest import Clock

T0 = datetime(2026, 11, 21, 12, 0, 0, 500000, tzinfo=UTC)
US = timedelta(microseconds=1)
KEY = SendKey("alice", "acct1", "key-0001")
SENT = {"id": "m1", "threadId": "t1", "labelIds": ["SENT"], "raw": "must-not-be-kept", "x": 1}
IDS = {"id": "m1", "threadId": "t1", "labelIds": ["SENT"]}
OUT = ClaimOutcome


def test_limits() -> None:
    """Records live a day; a pending one is presumed dead after five minutes."""
    assert RECORD_TTL / timedelta(hours=1) == 24
    assert PENDING_STALE / timedelta(minutes=1) == 5
    assert (KeyState.PENDING.value, KeyState.SENT.value) == ("pending", "sent")


def test_ids_only_keeps_just_the_ids() -> None:
    """Only id, threadId and labelIds survive; absent ones are not invented."""
    assert ids_only(SENT) == IDS
    assert ids_only({"id": "m2", "raw": "x"}) == {"id": "m2"}
    assert ids_only({}) == {}


def test_ids_only_keeps_a_drafts_message_ids() -> None:
    """A draft's answer keeps its id and its message's ids only; a non-object message is dropped."""
    draft = {"id": "d1", "message": {**SENT, "payload": {"body": "secret"}}, "raw": "x"}
    assert ids_only(draft) == {"id": "d1", "message": IDS}
    assert ids_only({"id": "d1", "message": {"raw": "x"}}) == {"id": "d1", "message": {}}
    assert ids_only({"id": "d1", "message": "m1"}) == {"id": "d1"}


PENDING_REC = KeyRecord("fp1", KeyState.PENDING, T0)
SENT_REC = KeyRecord("fp1", KeyState.SENT, T0, dict(IDS))

# (record, fingerprint asked, age, expected verdict); None means dead, may be taken over.
JUDGED: list[tuple[KeyRecord, str, timedelta, Claim | None]] = [
    (PENDING_REC, "fp1", timedelta(0), Claim(OUT.IN_PROGRESS)),
    (PENDING_REC, "fp1", PENDING_STALE - US, Claim(OUT.IN_PROGRESS)),
    (PENDING_REC, "fp1", PENDING_STALE, None),
    (PENDING_REC, "fp2", timedelta(0), Claim(OUT.MISMATCH)),
    (PENDING_REC, "fp2", PENDING_STALE - US, Claim(OUT.MISMATCH)),
    (PENDING_REC, "fp2", PENDING_STALE, None),
    (SENT_REC, "fp1", timedelta(0), Claim(OUT.SENT, IDS)),
    (SENT_REC, "fp1", PENDING_STALE + timedelta(hours=1), Claim(OUT.SENT, IDS)),
    (SENT_REC, "fp1", RECORD_TTL - US, Claim(OUT.SENT, IDS)),
    (SENT_REC, "fp1", RECORD_TTL, None),
    (SENT_REC, "fp2", timedelta(0), Claim(OUT.MISMATCH)),
    (SENT_REC, "fp2", RECORD_TTL - US, Claim(OUT.MISMATCH)),
    (SENT_REC, "fp2", RECORD_TTL, None),
    (KeyRecord("fp1", KeyState.SENT, T0), "fp1", timedelta(0), Claim(OUT.SENT, {})),
    (KeyRecord("fp1", KeyState.PENDING, T0.replace(tzinfo=None)), "fp1", PENDING_STALE - US,
     Claim(OUT.IN_PROGRESS)),  # a naive (SQLite) timestamp is UTC
    (KeyRecord("fp1", KeyState.PENDING, T0.replace(tzinfo=None)), "fp1", PENDING_STALE, None),
]  # fmt: skip


@pytest.mark.parametrize(("record", "asked", "age", "verdict"), JUDGED)
def test_judge(record: KeyRecord, asked: str, age: timedelta, verdict: Claim | None) -> None:
    """A record's meaning for a retry: in progress, sent, mismatch, or dead at its limit."""
    assert record.judge(asked, T0 + age) == verdict


def test_a_replayed_result_is_a_copy() -> None:
    """Changing the answer handed to one retry does not change what the next retry gets."""
    first = SENT_REC.judge("fp1", T0)
    assert first is not None
    assert first.result is not None
    first.result["id"] = "changed"
    assert SENT_REC.judge("fp1", T0) == Claim(OUT.SENT, IDS)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def engine(sqlite_engine: AsyncEngine) -> AsyncEngine:
    return sqlite_engine


@pytest.fixture(params=["memory", "sqlite"])
def keys(request: pytest.FixtureRequest, clock: Clock, engine: AsyncEngine) -> SendKeys:
    return MemorySendKeys(clock) if request.param == "memory" else SqlSendKeys(engine, clock)


async def outcome(keys: SendKeys, key: SendKey, fingerprint: str) -> ClaimOutcome:
    return (await keys.claim(key, fingerprint)).outcome


async def test_first_claim_then_in_progress_then_mismatch(keys: SendKeys) -> None:
    """A new key is claimed; the same request again is in progress; another is a mismatch."""
    assert await keys.claim(KEY, "fp1") == Claim(OUT.CLAIMED)
    assert await keys.claim(KEY, "fp1") == Claim(OUT.IN_PROGRESS)
    assert await keys.claim(KEY, "fp2") == Claim(OUT.MISMATCH)


async def test_completed_send_replays_ids_only(keys: SendKeys) -> None:
    """After complete(), the same request gets Gmail's ids and nothing else of the answer."""
    await keys.claim(KEY, "fp1")
    await keys.complete(KEY, SENT)
    assert await keys.claim(KEY, "fp1") == Claim(OUT.SENT, IDS)
    assert await keys.claim(KEY, "fp2") == Claim(OUT.MISMATCH)


@pytest.mark.parametrize(
    "other",
    [SendKey("bob", "acct1", KEY.key), SendKey("alice", "acct2", KEY.key),
     SendKey("alice", "acct1", "key-0002")],
    ids=["other actor", "other account", "other key"],
)  # fmt: skip
async def test_a_record_is_one_actor_account_and_key(keys: SendKeys, other: SendKey) -> None:
    """Changing any one part of (actor, account, key) is another record, untouched by this one."""
    await keys.claim(KEY, "fp1")
    await keys.claim(other, "fp1")
    await keys.complete(KEY, SENT)
    assert await outcome(keys, other, "fp1") is OUT.IN_PROGRESS  # not completed with KEY
    await keys.release(other)
    assert await outcome(keys, KEY, "fp1") is OUT.SENT  # not released with other
    assert await outcome(keys, other, "fp2") is OUT.CLAIMED


async def test_complete_of_an_unknown_key_creates_nothing(keys: SendKeys) -> None:
    """Completing a key never claimed leaves no record: the next claim is a fresh one."""
    await keys.complete(KEY, SENT)
    assert await outcome(keys, KEY, "fp1") is OUT.CLAIMED


async def test_release_frees_only_a_pending_record(keys: SendKeys) -> None:
    """A released pending claim may be retried; a sent record is never released."""
    await keys.release(KEY)  # unknown: nothing happens
    await keys.claim(KEY, "fp1")
    await keys.release(KEY)
    assert await outcome(keys, KEY, "fp2") is OUT.CLAIMED
    await keys.complete(KEY, SENT)
    await keys.release(KEY)
    assert await keys.claim(KEY, "fp2") == Claim(OUT.SENT, IDS)


async def test_stale_pending_is_taken_over_at_exactly_its_limit(
    keys: SendKeys, clock: Clock
) -> None:
    """One microsecond before PENDING_STALE the claim is still running; at it, it is dead."""
    await keys.claim(KEY, "fp1")
    clock.now = T0 + PENDING_STALE - US
    assert await outcome(keys, KEY, "fp2") is OUT.MISMATCH
    assert await outcome(keys, KEY, "fp1") is OUT.IN_PROGRESS
    clock.now = T0 + PENDING_STALE
    assert await outcome(keys, KEY, "fp2") is OUT.CLAIMED
    # the takeover is a fresh pending claim for the new request, timed from now
    assert await outcome(keys, KEY, "fp2") is OUT.IN_PROGRESS
    assert await outcome(keys, KEY, "fp1") is OUT.MISMATCH
    clock.now = T0 + 2 * PENDING_STALE - US
    assert await outcome(keys, KEY, "fp2") is OUT.IN_PROGRESS


async def test_sent_record_expires_at_exactly_its_ttl(keys: SendKeys, clock: Clock) -> None:
    """A sent record replays until RECORD_TTL; at it, the key starts over as a new pending claim."""
    await keys.claim(KEY, "fp1")
    await keys.complete(KEY, SENT)
    clock.now = T0 + RECORD_TTL - US
    assert await keys.claim(KEY, "fp1") == Claim(OUT.SENT, IDS)
    clock.now = T0 + RECORD_TTL
    assert await keys.claim(KEY, "fp1") == Claim(OUT.CLAIMED)
    assert await keys.claim(KEY, "fp1") == Claim(OUT.IN_PROGRESS)  # no stale result kept


async def rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT actor_id, account_id, key, fingerprint, state, result "
                 "FROM inbox_send_key ORDER BY actor_id, account_id, key")
        )  # fmt: skip
        return [tuple(r) for r in result]


async def test_stored_row_holds_state_and_ids_only(engine: AsyncEngine, clock: Clock) -> None:
    """On SQLite the row is (actor, account, key, fingerprint, 'pending'|'sent', ids only)."""
    keys = SqlSendKeys(engine, clock)
    await keys.claim(KEY, "fp1")
    assert await rows(engine) == [
        ("alice", "acct1", "key-0001", "fp1", "pending", "null")
    ]  # JSON null
    await keys.complete(KEY, SENT)
    ((*head, state, result),) = await rows(engine)
    assert (*head, state) == ("alice", "acct1", "key-0001", "fp1", "sent")
    assert "must-not-be-kept" not in str(result)
    assert await keys.claim(KEY, "fp1") == Claim(OUT.SENT, IDS)


async def test_a_new_claim_sweeps_the_accounts_expired_records(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Claiming a new key drops that account's records older than RECORD_TTL, and only those."""
    keys = SqlSendKeys(engine, clock)
    await keys.claim(SendKey("alice", "acct1", "old"), "fp")
    await keys.claim(SendKey("alice", "acct2", "old"), "fp")
    clock.now = T0 + timedelta(seconds=1)
    await keys.claim(SendKey("alice", "acct1", "edge"), "fp")
    clock.now = T0 + RECORD_TTL + timedelta(seconds=1)
    await keys.claim(SendKey("alice", "acct1", "new"), "fp")
    left = [(r[1], r[2]) for r in await rows(engine)]
    assert left == [("acct1", "edge"), ("acct1", "new"), ("acct2", "old")]


async def test_takeover_of_a_dead_record_rewrites_it(engine: AsyncEngine, clock: Clock) -> None:
    """A dead record taken over holds the new fingerprint, pending, no result, the new time."""
    keys = SqlSendKeys(engine, clock)
    await keys.claim(KEY, "fp1")
    await keys.complete(KEY, SENT)
    clock.now = T0 + RECORD_TTL
    assert await keys.claim(KEY, "fp2") == Claim(OUT.CLAIMED)
    assert await rows(engine) == [
        ("alice", "acct1", "key-0001", "fp2", "pending", "null")
    ]  # JSON null
    clock.now = T0 + RECORD_TTL + PENDING_STALE - US
    assert await outcome(keys, KEY, "fp2") is OUT.IN_PROGRESS


async def test_purger_deletes_one_accounts_records(engine: AsyncEngine, clock: Clock) -> None:
    """Unlink's purger removes every record of that account and counts them; others stay."""
    keys = SqlSendKeys(engine, clock)
    for key in (KEY, SendKey("bob", "acct1", "k2"), SendKey("alice", "acct2", KEY.key)):
        await keys.claim(key, "fp")
    assert SendKeysPurger.name == "inbox"
    async with session_factory(engine)() as session, session.begin():
        assert await SendKeysPurger().purge(session, "acct1") == {"inbox_send_key": 2}
    async with session_factory(engine)() as session, session.begin():
        assert await SendKeysPurger().purge(session, "acct9") == {"inbox_send_key": 0}
    assert [(r[0], r[1]) for r in await rows(engine)] == [("alice", "acct2")]


async def test_takeover_rewrites_only_its_own_record(engine: AsyncEngine, clock: Clock) -> None:
    """Two keys claimed at the same instant: taking over one leaves the other as it was."""
    keys = SqlSendKeys(engine, clock)
    other = SendKey("alice", "acct1", "key-0002")
    await keys.claim(KEY, "fp1")
    await keys.claim(other, "fp1")
    clock.now = T0 + PENDING_STALE
    assert await keys.claim(KEY, "fp2") == Claim(OUT.CLAIMED)
    assert [r[3] for r in await rows(engine)] == ["fp2", "fp1"]


class _AlwaysRaced:
    """An engine whose every transaction loses an insert race (IntegrityError)."""

    def begin(self) -> _AlwaysRaced:
        return self

    async def __aenter__(self) -> None:
        raise exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    async def __aexit__(self, *args: object) -> None:
        return None


async def test_a_claim_that_keeps_losing_races_is_in_progress() -> None:
    """After three lost races the claim answers in progress (never claimed, never sent twice)."""
    calls: list[datetime] = []

    def counting_clock() -> datetime:
        calls.append(T0)
        return T0

    keys = SqlSendKeys(_AlwaysRaced(), counting_clock)  # type: ignore[arg-type]
    assert await keys.claim(KEY, "fp1") == Claim(OUT.IN_PROGRESS)
    assert len(calls) == 3
