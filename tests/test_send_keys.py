"""Idempotency-Key records: the same rules in memory and on both database engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.db import create_engine, migrate, session_factory
from connector.inbox.send_keys import (
    PENDING_STALE,
    RECORD_TTL,
    ClaimOutcome,
    SendKey,
    SendKeys,
    SendKeysPurger,
    SqlSendKeys,
)
from connector.testing.send_keys import MemorySendKeys
from tests.conftest import Clock, _drop_pg_db, _make_pg_db

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = SendKey("alice", "acct1", "retry-key-0001")
SENT = {"id": "m1", "threadId": "t1", "labelIds": ["SENT"], "raw": "must-not-be-kept"}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def keys(
    request: pytest.FixtureRequest, clock: Clock, tmp_path: Path
) -> AsyncIterator[SendKeys]:
    if request.param == "memory":
        yield MemorySendKeys(clock)
        return
    sqlite = request.param == "sqlite"
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if sqlite else await _make_pg_db()
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield SqlSendKeys(engine, clock)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await _drop_pg_db(url)


async def test_claim_complete_replay(keys: SendKeys) -> None:
    """First claim is ours; once completed, the same request gets the ids-only answer."""
    assert (await keys.claim(KEY, "fp1")).outcome is ClaimOutcome.CLAIMED
    assert (await keys.claim(KEY, "fp1")).outcome is ClaimOutcome.IN_PROGRESS
    await keys.complete(KEY, SENT)
    replay = await keys.claim(KEY, "fp1")
    assert replay.outcome is ClaimOutcome.SENT
    assert replay.result == {"id": "m1", "threadId": "t1", "labelIds": ["SENT"]}
    # another caller or account with the same key string is a different record
    other = SendKey("bob", "acct1", KEY.key)
    assert (await keys.claim(other, "fp1")).outcome is ClaimOutcome.CLAIMED


async def test_reused_key_for_another_request_is_a_mismatch(keys: SendKeys) -> None:
    await keys.claim(KEY, "fp1")
    assert (await keys.claim(KEY, "fp2")).outcome is ClaimOutcome.MISMATCH
    await keys.complete(KEY, SENT)
    assert (await keys.claim(KEY, "fp2")).outcome is ClaimOutcome.MISMATCH


async def test_release_lets_a_retry_send(keys: SendKeys) -> None:
    await keys.claim(KEY, "fp1")
    await keys.release(KEY)
    assert (await keys.claim(KEY, "fp1")).outcome is ClaimOutcome.CLAIMED
    await keys.complete(KEY, SENT)
    await keys.release(KEY)  # a completed record is never released
    assert (await keys.claim(KEY, "fp1")).outcome is ClaimOutcome.SENT


async def test_stale_pending_and_expired_records_are_taken_over(
    keys: SendKeys, clock: Clock
) -> None:
    await keys.claim(KEY, "fp1")
    clock.now += PENDING_STALE - timedelta(seconds=1)
    assert (await keys.claim(KEY, "fp1")).outcome is ClaimOutcome.IN_PROGRESS
    clock.now += timedelta(seconds=2)  # its process died mid-send
    assert (await keys.claim(KEY, "fp2")).outcome is ClaimOutcome.CLAIMED
    await keys.complete(KEY, SENT)
    clock.now += RECORD_TTL - timedelta(seconds=1)
    assert (await keys.claim(KEY, "fp2")).outcome is ClaimOutcome.SENT
    clock.now += timedelta(seconds=2)
    assert (await keys.claim(KEY, "fp3")).outcome is ClaimOutcome.CLAIMED


async def test_concurrent_claims_from_two_processes_admit_one(db_url: str, clock: Clock) -> None:
    """Two engines (as two worker processes would have) race for one key: one send only."""
    engines = [create_engine(db_url), create_engine(db_url)]
    await migrate(engines[0])
    try:
        stores = [SqlSendKeys(e, clock) for e in engines]
        outcomes = await asyncio.gather(
            *(stores[i % 2].claim(SendKey("alice", "acct1", f"k-{n}"), "fp")
              for n in range(10) for i in range(4))
        )  # fmt: skip
        for n in range(10):
            mine = [o.outcome for o in outcomes[n * 4 : n * 4 + 4]]
            assert mine.count(ClaimOutcome.CLAIMED) == 1, mine
            assert set(mine) <= {ClaimOutcome.CLAIMED, ClaimOutcome.IN_PROGRESS}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_unlink_purges_the_accounts_records(db_url: str, clock: Clock) -> None:
    engine = create_engine(db_url)
    await migrate(engine)
    try:
        keys = SqlSendKeys(engine, clock)
        await keys.claim(KEY, "fp1")
        await keys.claim(SendKey("alice", "acct1", "another-key-01"), "fp1")
        await keys.claim(SendKey("carol", "acct2", KEY.key), "fp1")
        async with session_factory(engine)() as session, session.begin():
            counts = await SendKeysPurger().purge(session, "acct1")
        assert counts == {"inbox_send_key": 2}
        assert (await keys.claim(KEY, "fp9")).outcome is ClaimOutcome.CLAIMED  # gone
        other = await keys.claim(SendKey("carol", "acct2", KEY.key), "fp1")
        assert other.outcome is ClaimOutcome.IN_PROGRESS  # untouched
    finally:
        await engine.dispose()
