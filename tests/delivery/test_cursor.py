"""The delivery cursor on SQLite and PostgreSQL: a delivery settles the account's head (the
first one of all writes the cursor), and a late settle never moves the cursor back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from connector.db import create_engine, migrate
from connector.delivery.store import Cursor, DeliveryStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[DeliveryStore]:
    engine = create_engine(db_url)
    await migrate(engine)
    yield DeliveryStore(engine)
    await engine.dispose()


async def test_the_first_delivery_of_an_account_writes_its_cursor(store: DeliveryStore) -> None:
    assert await store.cursor("acct-1") == Cursor("acct-1")
    await store.delivered("acct-1", 3, T0)
    assert await store.cursor("acct-1") == Cursor("acct-1", 3)
    assert await store.cursor("acct-2") == Cursor("acct-2")  # one account's row only


async def test_a_delivery_settles_a_retried_head(store: DeliveryStore) -> None:
    await store.delivered("acct-1", 3, T0)
    await store.retry_later("acct-1", 4, "http_503", T0, T0 + timedelta(seconds=5))
    retried = await store.retry_later("acct-1", 4, "http_503", T0, T0 + timedelta(seconds=9))
    assert (retried.head_seq, retried.attempts) == (4, 2)
    await store.delivered("acct-1", 4, T0 + timedelta(seconds=9))
    assert await store.cursor("acct-1") == Cursor("acct-1", 4)  # head, attempts cleared
    assert await store.retries_due(T0 + timedelta(hours=1), 10) == []


async def test_a_late_settle_never_moves_the_cursor_back(store: DeliveryStore) -> None:
    await store.delivered("acct-1", 7, T0)
    await store.delivered("acct-1", 5, T0)
    assert (await store.cursor("acct-1")).delivered_seq == 7
