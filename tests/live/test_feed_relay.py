"""Feed commits relayed between instances through PostgreSQL LISTEN/NOTIFY: an append committed
by one instance wakes another's listeners at once (not at its next poll); its own notices and a
transaction that does not commit wake nobody; a lost LISTEN connection is reopened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.accounts.changes import Change, ChangeKind
from connector.accounts.feed_relay import SENDER, FeedRelay, listen_dsn, notice, parse
from connector.accounts.feed_signal import FeedSignal, woken
from connector.accounts.models import AccountRow
from connector.accounts.sync_store import AccountNotLinkedError, SyncStore
from connector.db import create_engine, migrate, session_factory

ADDED = Change(ChangeKind.MESSAGE_ADDED, "100", "m1", "t1")


def test_a_notice_names_its_sender_and_account_and_our_own_are_skipped() -> None:
    params = notice("acc-1", sender="s1")
    assert params == {"channel": "connector_feed", "payload": "s1 acc-1"}
    assert parse("s1 acc-1", me="s2") == "acc-1"
    assert parse("s1 acc-1", me="s1") is None
    assert parse("garbage", me="s2") is None
    assert parse(f"{SENDER} acc-1") is None


def test_the_listen_dsn_drops_the_driver() -> None:
    dsn = listen_dsn("postgresql+asyncpg://u:p@h:5432/db")
    assert dsn == "postgresql://u:p@h:5432/db"


@pytest.fixture
async def engine(pg_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_database)
    await migrate(engine)
    now = datetime.now(UTC)
    async with session_factory(engine)() as session, session.begin():
        session.add(AccountRow(id="acc-1", owner_user_id="u1", status="active", scopes=[],
                               refresh_token_sealed="sealed", linked_at=now,
                               updated_at=now))  # fmt: skip
    yield engine
    await engine.dispose()


@pytest.fixture
async def relayed(
    pg_database: str, engine: AsyncEngine
) -> AsyncIterator[tuple[FeedRelay, FeedSignal]]:
    """Another instance's signal and relay (a sender name that is not this process's)."""
    theirs = FeedSignal()
    relay = FeedRelay(pg_database, theirs, me="another-instance", retry_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(relay.listening.wait(), 10)
    yield relay, theirs
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_an_append_wakes_the_other_instances_listener_at_once(
    engine: AsyncEngine, relayed: tuple[FeedRelay, FeedSignal]
) -> None:
    _relay, theirs = relayed
    store = SyncStore(engine)
    with theirs.listen("acc-1") as one, theirs.listen_all() as every:
        await store.commit("acc-1", "100", [ADDED])
        assert await woken(one, 5)
        assert await woken(every, 5)
        await store.commit("acc-1", "101", [])  # the cursor moved, nothing appended: no notice
        await store.append("acc-1", [Change(ChangeKind.NEEDS_RELINK)])
        assert await woken(one, 5)
        assert not await woken(one, 0.3)  # exactly the one append, not the empty commit


async def test_a_transaction_that_does_not_commit_wakes_nobody(
    engine: AsyncEngine, relayed: tuple[FeedRelay, FeedSignal]
) -> None:
    _relay, theirs = relayed
    with theirs.listen_all() as every:
        with pytest.raises(AccountNotLinkedError):
            await SyncStore(engine).append("acc-unknown", [ADDED])
        assert not await woken(every, 0.5)


async def test_a_lost_listen_connection_is_reopened(
    pg_database: str, engine: AsyncEngine, relayed: tuple[FeedRelay, FeedSignal]
) -> None:
    relay, theirs = relayed
    admin = await asyncpg.connect(listen_dsn(pg_database))
    try:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        assert ended == 1
    finally:
        await admin.close()
    async with asyncio.timeout(10):
        while relay.listening.is_set():
            await asyncio.sleep(0.02)
        await relay.listening.wait()
    with theirs.listen("acc-1") as one:
        await SyncStore(engine).commit("acc-1", "100", [ADDED])
        assert await woken(one, 5)
