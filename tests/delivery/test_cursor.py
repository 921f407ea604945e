"""The delivery cursor on SQLite and PostgreSQL: a delivery settles the account's head (the
first one of all writes the cursor), a late settle never moves the cursor back, and a run reads
its accounts' cursors and pending changes in one go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from connector.accounts.changes import ChangeKind
from connector.accounts.models import ChangeRow
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


async def _feed(store: DeliveryStore, rows: list[tuple[str, str]]) -> list[int]:
    """Append (account, message id) changes to the feed; their seqs."""
    table = ChangeRow.__table__  # type: ignore[attr-defined]
    seqs = []
    async with store.engine.begin() as conn:
        for account_id, message_id in rows:
            added = await conn.execute(
                sa.insert(table).returning(table.c.seq),
                {"account_id": account_id, "kind": ChangeKind.MESSAGE_ADDED.value,
                 "history_id": "9", "message_id": message_id, "thread_id": message_id,
                 "label_ids": ["INBOX"], "message_ids": [], "created_at": T0},
            )  # fmt: skip
            seqs.append(added.scalar_one())
    return seqs


async def test_pending_reads_each_accounts_cursor_and_next_changes(store: DeliveryStore) -> None:
    """Per account: its cursor as stored (a retried head with its attempts) and its first
    `limit` changes after the delivered seq, in order; other accounts' changes never mix in."""
    seqs = await _feed(store, [("a", "m1"), ("b", "m2"), ("a", "m3"), ("a", "m4"), ("a", "m5"),
                               ("c", "m6")])  # fmt: skip
    await store.delivered("a", seqs[0], T0)
    await store.retry_later("a", seqs[2], "http.503", T0, T0 + timedelta(seconds=5))
    pending = await store.pending(["a", "b", "idle"], limit=2)
    assert set(pending) == {"a", "b", "idle"}
    cursor, changes = pending["a"]
    assert cursor == Cursor("a", seqs[0], seqs[2], 1, T0)
    assert [c.seq for c in changes] == [seqs[2], seqs[3]]  # limit 2, after the delivered seq
    assert [c.change.message_id for c in changes] == ["m3", "m4"]
    assert changes[0].change.label_ids == ("INBOX",)
    cursor, changes = pending["b"]
    assert cursor == Cursor("b")  # never delivered: no cursor row yet
    assert [c.change.message_id for c in changes] == ["m2"]
    assert pending["idle"] == (Cursor("idle"), [])
    await store.delivered("b", seqs[1], T0)
    assert (await store.pending(["b"], limit=10))["b"] == (Cursor("b"), [])
    assert await store.pending([], limit=10) == {}


async def test_cursors_moved_at_once_go_as_one_statement_each_to_its_furthest(
    store: DeliveryStore,
) -> None:
    """Deliveries of many accounts finishing together move their cursors in one statement; an
    account moved twice in it ends at its furthest seq, whichever order the moves came in."""
    import asyncio

    await store.delivered("acct-0", 1, T0)  # a first batch alone: the group was idle
    before = store._settled.batches
    moves = [(f"acct-{n}", n + 10) for n in range(20)] + [("acct-3", 5), ("acct-4", 99)]
    await asyncio.gather(*(store.delivered(a, seq, T0) for a, seq in moves))
    assert store._settled.batches == before + 1
    assert (await store.cursor("acct-3")).delivered_seq == 13  # 5 came later, never backwards
    assert (await store.cursor("acct-4")).delivered_seq == 99
    assert [(await store.cursor(f"acct-{n}")).delivered_seq for n in (0, 19)] == [10, 29]
