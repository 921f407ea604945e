"""Leases in the database on SQLite and PostgreSQL: taking, renewal, expiry, fencing, batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.db import create_engine, migrate
from connector.live.leases import Kind, LeaseLocks, LeaseOwnership, Leases
from connector.live.ports import Work
from tests.conftest import Clock

TTL = timedelta(seconds=10)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


async def test_one_holder_at_a_time_until_expiry(engine: AsyncEngine, clock: Clock) -> None:
    """A held lease refuses another holder, is renewable by its own, and passes on expiry."""
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    assert await a.acquire(Kind.SYNC, "acc1", TTL)
    assert not await b.acquire(Kind.SYNC, "acc1", TTL)
    assert await a.acquire(Kind.SYNC, "acc1", TTL)  # ours: renewed
    assert await b.acquire(Kind.WATCH, "acc1", TTL)  # another kind is another lease
    clock.now = T0 + TTL - timedelta(seconds=1)
    assert not await b.acquire(Kind.SYNC, "acc1", TTL)
    clock.now = T0 + TTL
    assert await b.acquire(Kind.SYNC, "acc1", TTL)
    assert await a.held(Kind.SYNC) == set()
    assert await b.held(Kind.SYNC) == {"acc1"}
    assert not await a.renew(Kind.SYNC, "acc1", TTL)  # lost: renewal refused


async def test_fencing_token_grows_on_each_takeover(engine: AsyncEngine, clock: Clock) -> None:
    """The token stays while one holder renews and grows by one at each change of holder,
    also after a release, so the stale holder's check fails."""
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    assert await a.acquire(Kind.DELIVERY, "acc1", TTL)
    first = await a.current(Kind.DELIVERY, "acc1")
    assert first is not None
    assert first.token == 1
    assert first.holder == "a"
    assert await a.renew(Kind.DELIVERY, "acc1", TTL)
    assert await a.fenced(Kind.DELIVERY, "acc1", 1)
    clock.now = T0 + 2 * TTL
    assert not await a.fenced(Kind.DELIVERY, "acc1", 1)  # expired
    assert await b.acquire(Kind.DELIVERY, "acc1", TTL)
    second = await b.current(Kind.DELIVERY, "acc1")
    assert second is not None
    assert second.token == 2
    assert second.holder == "b"
    assert await b.fenced(Kind.DELIVERY, "acc1", 2)
    assert not await a.fenced(Kind.DELIVERY, "acc1", 1)
    await b.release(Kind.DELIVERY, "acc1")
    assert await b.held(Kind.DELIVERY) == set()
    assert await a.acquire(Kind.DELIVERY, "acc1", TTL)  # released: free at once
    third = await a.current(Kind.DELIVERY, "acc1")
    assert third is not None
    assert third.token == 3


async def test_release_of_someone_elses_lease_does_nothing(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Only the holder can release or renew a lease."""
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    assert await a.acquire(Kind.SYNC, "acc1", TTL)
    await b.release(Kind.SYNC, "acc1")
    assert not await b.renew(Kind.SYNC, "acc1", TTL)
    assert await a.held(Kind.SYNC) == {"acc1"}


async def test_claim_batch_splits_keys_and_takes_over_expired(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Two holders claiming from the same keys get disjoint sets up to their limits; the
    keys of a holder that stops renewing go to the other after the TTL."""
    keys = [f"acc{i:02d}" for i in range(10)]
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    got_a = await a.claim_batch(Kind.SYNC, keys, TTL, limit=6)
    got_b = await b.claim_batch(Kind.SYNC, keys, TTL, limit=6)
    assert len(got_a) == 6
    assert len(got_b) == 4
    assert set(got_a).isdisjoint(got_b)
    assert set(got_a) | set(got_b) == set(keys)
    assert await a.held(Kind.SYNC) == set(got_a)
    assert await a.claim_batch(Kind.SYNC, keys, TTL, limit=0) == []
    clock.now = T0 + TTL / 2
    assert await b.renew_all(Kind.SYNC, TTL) == set(got_b)
    clock.now = T0 + TTL
    taken = await b.claim_batch(Kind.SYNC, keys, TTL, limit=100)
    assert set(taken) == set(keys)  # a's expired leases, and b's own renewed ones
    lease = await b.current(Kind.SYNC, got_a[0])
    assert lease is not None
    assert lease.token == 2


async def test_concurrent_acquire_has_one_winner(engine: AsyncEngine, clock: Clock) -> None:
    """Many holders racing for the same free key on one engine: exactly one wins."""
    contenders = [Leases(engine, f"h{i}", clock) for i in range(8)]
    won = await asyncio.gather(*(c.acquire(Kind.SYNC, "acc1", TTL) for c in contenders))
    assert sum(won) == 1


async def test_account_ownership_and_lease_locks(engine: AsyncEngine, clock: Clock) -> None:
    """The dispatcher's ownership port takes the account's delivery lease; the locks port
    holds the sync lease for the block and releases it after."""
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    owns_a, owns_b = (
        LeaseOwnership(a, Kind.DELIVERY, TTL),
        LeaseOwnership(b, Kind.DELIVERY, TTL),
    )
    assert await owns_a(["acc1"]) == {"acc1"}
    assert await owns_b(["acc1", "acc2"]) == {"acc2"}  # acc1 is a's until its lease expires
    assert await owns_a(["acc1", "acc2"]) == {"acc1"}  # kept between asks, renewed
    locks_a, locks_b = LeaseLocks(a, TTL), LeaseLocks(b, TTL)
    async with locks_a.hold(Work.SYNC, "acc1") as mine:
        assert mine
        async with locks_a.hold(Work.SYNC, "acc1") as again:
            assert not again  # same process: the local lock says no without the database
        async with locks_b.hold(Work.SYNC, "acc1") as theirs:
            assert not theirs
    async with locks_b.hold(Work.SYNC, "acc1") as theirs:
        assert theirs


async def test_ownership_keeps_its_leases_for_as_long_as_a_run_takes(
    engine: AsyncEngine,
) -> None:
    """A dispatcher run that outlasts the TTL (a loaded machine, many accounts) still owns
    what it claimed at its start: `keeping()` renews; after the run the leases run out."""
    from connector.clock import system_clock

    ttl = timedelta(seconds=0.6)
    a, b = Leases(engine, "a", system_clock), Leases(engine, "b", system_clock)
    owns_a, owns_b = LeaseOwnership(a, Kind.DELIVERY, ttl), LeaseOwnership(b, Kind.DELIVERY, ttl)
    async with owns_a.keeping():
        assert await owns_a(["acc1"]) == {"acc1"}
        await asyncio.sleep(1.5)  # 2.5 TTLs
        assert await owns_b(["acc1"]) == set()
    await asyncio.sleep(0.8)
    assert await owns_b(["acc1"]) == {"acc1"}
