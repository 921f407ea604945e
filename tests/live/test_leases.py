"""Leases in the database on SQLite and PostgreSQL: taking, renewal, expiry, fencing, batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
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


async def test_claim_many_takes_what_is_free_and_takes_over_expired(
    engine: AsyncEngine, clock: Clock
) -> None:
    """A claim takes the keys free, expired or already its own (never leased ones too), never
    another holder's live ones; the keys of a holder that stops renewing go to the other after
    the TTL, each takeover adding one to the fencing token."""
    keys = [f"acc{i:02d}" for i in range(10)]
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    assert await a.claim_many(Kind.SYNC, keys[:6], TTL) == set(keys[:6])  # never leased
    assert await b.claim_many(Kind.SYNC, keys, TTL) == set(keys[6:])
    assert await a.held(Kind.SYNC) == set(keys[:6])
    assert await a.claim_many(Kind.SYNC, keys, TTL) == set(keys[:6])  # its own, renewed
    assert await a.claim_many(Kind.SYNC, [], TTL) == set()
    clock.now = T0 + TTL / 2
    assert await b.renew_all(Kind.SYNC, TTL) == set(keys[6:])
    clock.now = T0 + TTL
    assert await b.claim_many(Kind.SYNC, keys, TTL) == set(keys)  # a's expired, b's own
    lease = await b.current(Kind.SYNC, keys[0])
    assert lease is not None
    assert (lease.holder, lease.token) == ("b", 2)
    assert await a.claim_many(Kind.WATCH, keys[:1], TTL) == set(keys[:1])  # another kind


async def test_concurrent_claims_split_the_keys(engine: AsyncEngine, clock: Clock) -> None:
    """Holders claiming overlapping batches at once (some keys leased before, some never) end
    with disjoint sets that together cover every key, and nobody fails."""
    keys = [f"acc{i:02d}" for i in range(40)]
    first = Leases(engine, "first", clock)
    await first.claim_many(Kind.SYNC, keys[::2], TTL)
    await first.release_many(Kind.SYNC, keys[::2])
    holders = [Leases(engine, f"h{i}", clock) for i in range(4)]
    got = await asyncio.gather(*(h.claim_many(Kind.SYNC, keys, TTL) for h in holders))
    assert sum(len(g) for g in got) == len(keys)
    assert set().union(*got) == set(keys)
    for holder, taken in zip(holders, got, strict=True):
        assert await holder.held(Kind.SYNC) == taken


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


async def test_lease_locks_hold_a_batch_and_let_it_go_together(
    engine: AsyncEngine, clock: Clock
) -> None:
    """`hold_many` enters with the accounts free here and in the database (another instance's
    and this process's own held ones left out), holds them for the block, and lets exactly
    them go on exit, also when the block fails."""
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    locks_a, locks_b = LeaseLocks(a, TTL), LeaseLocks(b, TTL)
    async with locks_b.hold(Work.SYNC, "acc2"), locks_a.hold(Work.SYNC, "acc3") as mine:
        assert mine
        async with locks_a.hold_many(Work.SYNC, ["acc1", "acc2", "acc3", "acc4"]) as batch:
            assert batch == {"acc1", "acc4"}  # acc2: b's; acc3: this process's own
            assert await a.held(Kind.SYNC) == {"acc1", "acc3", "acc4"}
            async with locks_b.hold_many(Work.SYNC, ["acc1", "acc4", "acc5"]) as theirs:
                assert theirs == {"acc5"}
        # acc3 is still held by the single hold, not let go with the batch
        assert await a.held(Kind.SYNC) == {"acc3"}

    async def failing_block() -> None:
        async with locks_a.hold_many(Work.SYNC, ["acc1", "acc2"]) as batch:
            assert batch == {"acc1", "acc2"}
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError):
        await failing_block()
    assert await a.held(Kind.SYNC) == set()
    async with locks_b.hold_many(Work.SYNC, ["acc1", "acc2"]) as theirs:
        assert theirs == {"acc1", "acc2"}
    async with locks_a.hold_many(Work.SYNC, []) as none:
        assert none == set()


async def test_renew_and_release_many_touch_only_this_holders_leases(
    engine: AsyncEngine, clock: Clock
) -> None:
    a, b = Leases(engine, "a", clock), Leases(engine, "b", clock)
    assert await a.claim_many(Kind.SYNC, ["acc1", "acc2"], TTL) == {"acc1", "acc2"}
    assert await b.acquire(Kind.SYNC, "acc3", TTL)
    clock.now = T0 + TTL / 2
    assert await a.renew_many(Kind.SYNC, ["acc1", "acc2", "acc3"], TTL) == {"acc1", "acc2"}
    clock.now = T0 + TTL + timedelta(seconds=1)  # past the first TTL, inside the renewed one
    assert await a.held(Kind.SYNC) == {"acc1", "acc2"}
    assert await b.held(Kind.SYNC) == set()
    assert await b.acquire(Kind.SYNC, "acc3", TTL)
    await a.release_many(Kind.SYNC, ["acc1", "acc3"])  # acc3 is b's: untouched
    assert await a.held(Kind.SYNC) == {"acc2"}
    assert await b.held(Kind.SYNC) == {"acc3"}
    assert await b.acquire(Kind.SYNC, "acc1", TTL)
    await a.release_many(Kind.SYNC, [])
    assert await a.renew_many(Kind.SYNC, [], TTL) == set()


async def test_a_held_batch_is_renewed_while_its_block_runs(engine: AsyncEngine) -> None:
    from connector.clock import system_clock

    ttl = timedelta(seconds=0.6)
    a, b = Leases(engine, "a", system_clock), Leases(engine, "b", system_clock)
    async with LeaseLocks(a, ttl).hold_many(Work.SYNC, ["acc1", "acc2"]) as mine:
        assert mine == {"acc1", "acc2"}
        await asyncio.sleep(1.5)  # 2.5 TTLs
        assert await b.claim_many(Kind.SYNC, ["acc1", "acc2"], ttl) == set()
    assert await b.claim_many(Kind.SYNC, ["acc1", "acc2"], ttl) == {"acc1", "acc2"}


async def test_a_claim_waits_for_a_row_being_written_rather_than_skipping_it(
    engine: AsyncEngine, clock: Clock
) -> None:
    """While another statement holds one of the batch's rows (a heartbeat renewing it, another
    instance claiming it), a claim waits for it and then decides on the row as committed. It
    used to skip the row (SKIP LOCKED): the holder's own lease then came back as not its own,
    and a dispatcher run left that account's change until the next full scan."""
    if engine.url.get_backend_name() != "postgresql":
        pytest.skip("row locks: PostgreSQL (a SQLite database has one writer)")
    a = Leases(engine, "a", clock)
    assert await a.claim_many(Kind.DELIVERY, ["acc1", "acc2"], TTL) == {"acc1", "acc2"}
    async with engine.connect() as other:
        await other.execute(
            sa.text("SELECT 1 FROM live_lease WHERE kind = 'delivery' AND key = 'acc1' FOR UPDATE")
        )
        claim = asyncio.create_task(a.claim_many(Kind.DELIVERY, ["acc1", "acc2"], TTL))
        await asyncio.sleep(0.3)
        assert not claim.done()  # waiting for the row, not deciding without it
        await other.commit()
    assert await asyncio.wait_for(claim, 5) == {"acc1", "acc2"}


async def test_claims_and_heartbeats_at_once_never_deadlock(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Batches claimed, renewed, renewed as a whole and let go by several holders at once, over
    the same keys: every statement locks its rows in key order, so none fails."""
    keys = [f"acc{i:02d}" for i in range(30)]
    holders = [Leases(engine, f"h{i}", clock) for i in range(3)]

    async def churn(leases: Leases, offset: int) -> None:
        for n in range(15):
            batch = keys[offset:] + keys[:offset] if n % 2 else list(reversed(keys))
            taken = await leases.claim_many(Kind.SYNC, batch, TTL)
            await leases.renew_all(Kind.SYNC, TTL)
            await leases.renew_many(Kind.SYNC, taken, TTL)
            await leases.release_many(Kind.SYNC, taken)

    await asyncio.gather(*(churn(h, 10 * i) for i, h in enumerate(holders)))
    for leases in holders:
        assert await leases.held(Kind.SYNC) == set()
