"""The delivery cursor and dead letters, beside the change feed (the outbox) they follow."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from connector.accounts.models import ChangeRow
from connector.accounts.store import as_utc
from connector.accounts.sync_store import StoredChange, stored_change
from connector.db import (
    first_row,
    flush_wait_off,
    one_statement,
    read_sessions,
    session_factory,
)
from connector.delivery.models import DeadLetterRow, DeadLetterStatus, DeliveryCursorRow
from connector.grouped import Grouped

# The cursor table as Core sees it: read and moved once for every delivery.
_CURSOR = DeliveryCursorRow.__table__  # type: ignore[attr-defined]
_CURSOR_OF = sa.select(_CURSOR).where(_CURSOR.c.account_id == sa.bindparam("account_id"))
_CHANGE = ChangeRow.__table__  # type: ignore[attr-defined]


def _pending_statement() -> sa.Select[Any]:
    """Each of `account_ids`' cursor and its first `limit` undelivered changes, in one read
    for a whole dispatcher run (it was two reads an account): rows ordered by account, seq."""
    ranked = (
        sa.select(
            _CHANGE,
            _CURSOR.c.delivered_seq.label("cursor_delivered_seq"),
            _CURSOR.c.head_seq.label("cursor_head_seq"),
            _CURSOR.c.attempts.label("cursor_attempts"),
            _CURSOR.c.first_attempt_at.label("cursor_first_attempt_at"),
            sa.func.row_number()
            .over(partition_by=_CHANGE.c.account_id, order_by=_CHANGE.c.seq)
            .label("rank"),
        )
        .select_from(_CHANGE.outerjoin(_CURSOR, _CURSOR.c.account_id == _CHANGE.c.account_id))
        .where(
            _CHANGE.c.account_id.in_(sa.bindparam("account_ids", expanding=True)),
            _CHANGE.c.seq > sa.func.coalesce(_CURSOR.c.delivered_seq, 0),
        )
        .subquery("ranked")
    )
    return (
        sa.select(ranked)
        .where(ranked.c.rank <= sa.bindparam("limit", type_=sa.Integer))
        .order_by(ranked.c.account_id, ranked.c.seq)
    )


_PENDING = _pending_statement()
# A settled cursor (delivered or dead-lettered up to its seq): no head is being retried.
_SETTLED: dict[str, Any] = {"head_seq": None, "attempts": 0, "first_attempt_at": None,
                            "next_attempt_at": None, "last_error": None}  # fmt: skip


def _settle_statement(engine: AsyncEngine) -> Any:
    """`DeliveryStore.delivered` as one upsert (parameters `account_id`, `seq`, `now`): built
    once, so no call pays for building it or for its cache key. A moved cursor may commit
    without a flush wait (lost at a crash, the change is delivered again, same event id)."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    seq = sa.bindparam("seq", type_=sa.Integer)
    now = sa.bindparam("now", type_=_CURSOR.c.updated_at.type)
    row = {"account_id": sa.bindparam("account_id", type_=sa.String), "delivered_seq": seq,
           **_SETTLED, "updated_at": now}  # fmt: skip
    moved = case((_CURSOR.c.delivered_seq < seq, seq), else_=_CURSOR.c.delivered_seq)
    return (
        insert(_CURSOR)
        .values(row)
        .on_conflict_do_update(
            index_elements=[_CURSOR.c.account_id],
            set_={"delivered_seq": moved, **_SETTLED, "updated_at": now},
            where=flush_wait_off(engine),
        )
    )


@dataclass(frozen=True, slots=True)
class Cursor:
    account_id: str
    delivered_seq: int = 0
    head_seq: int | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    account_id: str
    id: str  # the event id
    seq: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    account_id: str
    seq: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    last_error: str
    status: DeadLetterStatus
    dead_at: datetime
    redelivered_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "accountId": self.account_id, "seq": self.seq, "kind": self.kind,
            "attempts": self.attempts, "lastError": self.last_error, "status": self.status.value,
            "deadAt": self.dead_at.isoformat(),
            "redeliveredAt": self.redelivered_at.isoformat() if self.redelivered_at else None,
        }  # fmt: skip


def _dead(row: DeadLetterRow) -> DeadLetter:
    dead_at = as_utc(row.dead_at)
    assert dead_at is not None  # NOT NULL
    return DeadLetter(
        row.id, row.account_id, row.seq, row.kind, dict(row.payload), row.attempts,
        row.last_error, DeadLetterStatus(row.status), dead_at, as_utc(row.redelivered_at),
    )  # fmt: skip


class DeliveryPurger:
    """Unlinking deletes the account's delivery cursor and dead letters (they hold its ids)."""

    name = "delivery"

    async def purge(self, session: AsyncSession, account_id: str) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for model in (DeliveryCursorRow, DeadLetterRow):
            table = model.__table__  # type: ignore[union-attr]
            result = await session.execute(delete(table).where(table.c.account_id == account_id))
            counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
        return counts


class DeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._reads = read_sessions(engine)
        self._statement = one_statement(engine)
        self._settle_head = _settle_statement(engine)
        self._settled: Grouped[tuple[str, int, datetime], None] = Grouped(
            self._settle_all, missing=None
        )

    async def due(self, now: datetime, limit: int, *, after: int | None = None) -> list[str]:
        """Accounts with an undelivered change whose next attempt is due, oldest change first;
        with `after`, only changes above that seq are read (an index range, not the feed)."""
        cur = DeliveryCursorRow
        query = (
            select(ChangeRow.account_id)
            .outerjoin(cur, col(cur.account_id) == col(ChangeRow.account_id))
            .where(
                col(ChangeRow.seq) > func.coalesce(col(cur.delivered_seq), 0),
                or_(col(cur.next_attempt_at).is_(None), col(cur.next_attempt_at) <= now),
            )
            .group_by(col(ChangeRow.account_id))
            .order_by(func.min(ChangeRow.seq))
            .limit(limit)
        )
        if after is not None:
            query = query.where(col(ChangeRow.seq) > after)
        async with self._reads() as session:
            return list((await session.execute(query)).scalars().all())

    async def retries_due(self, now: datetime, limit: int) -> list[str]:
        """Accounts whose head change failed and is due again (whatever its seq)."""
        cur = DeliveryCursorRow
        query = (
            select(cur.account_id)
            .where(col(cur.head_seq).is_not(None), col(cur.next_attempt_at) <= now)
            .order_by(col(cur.next_attempt_at))
            .limit(limit)
        )
        async with self._reads() as session:
            return list((await session.execute(query)).scalars().all())

    async def newest_seq(self) -> int:
        """The feed's highest seq (0 when empty): one index lookup."""
        async with self._reads() as session:
            return int((await session.execute(select(func.max(ChangeRow.seq)))).scalar() or 0)

    async def cursor(self, account_id: str) -> Cursor:
        row = await first_row(self._statement, _CURSOR_OF, {"account_id": account_id})
        if row is None:
            return Cursor(account_id)
        return Cursor(account_id, row.delivered_seq, row.head_seq, row.attempts,
                      as_utc(row.first_attempt_at))  # fmt: skip

    async def pending(
        self, account_ids: Collection[str], limit: int
    ) -> dict[str, tuple[Cursor, list[StoredChange]]]:
        """Per account: its cursor and its first `limit` undelivered changes, in seq order (an
        account with none: its default cursor and no changes). One statement for them all."""
        found: dict[str, tuple[Cursor, list[StoredChange]]] = {
            a: (Cursor(a), []) for a in account_ids
        }
        if not account_ids:
            return found
        async with self._statement() as conn:
            rows = await conn.execute(_PENDING, {"account_ids": list(account_ids),
                                                 "limit": limit})  # fmt: skip
            for row in rows:
                cursor, changes = found[row.account_id]
                if not changes:
                    cursor = Cursor(
                        row.account_id, row.cursor_delivered_seq or 0, row.cursor_head_seq,
                        row.cursor_attempts or 0, as_utc(row.cursor_first_attempt_at),
                    )  # fmt: skip
                    found[row.account_id] = (cursor, changes)
                changes.append(stored_change(row))
        return found

    async def _row(
        self, session: AsyncSession, account_id: str, now: datetime
    ) -> DeliveryCursorRow:
        row = await session.get(DeliveryCursorRow, account_id)
        return row or DeliveryCursorRow(account_id=account_id, updated_at=now)

    @staticmethod
    def _settle(row: DeliveryCursorRow, seq: int, now: datetime) -> None:
        row.delivered_seq = max(row.delivered_seq, seq)
        for name, value in _SETTLED.items():  # as `delivered`'s upsert does
            setattr(row, name, value)
        row.updated_at = now

    async def delivered(self, account_id: str, seq: int, now: datetime) -> None:
        """`seq` reached the platform: the account moves on to its next change. Not flushed
        before returning: lost at a database crash, the change is sent again (same event id)."""
        # Made for every change delivered, by many accounts' deliveries at once: the cursors
        # moved together go as one statement (`Grouped`), whether or not a row exists yet.
        await self._settled((account_id, seq, now))

    async def _settle_all(self, moves: Sequence[tuple[str, int, datetime]]) -> dict[Any, None]:
        furthest: dict[str, tuple[int, datetime]] = {}
        for account_id, seq, now in moves:  # an account once: its furthest move (max seq)
            furthest[account_id] = max(furthest.get(account_id, (seq, now)), (seq, now))
        rows = [{"account_id": a, "seq": seq, "now": now} for a, (seq, now) in furthest.items()]
        async with self._statement() as conn:
            # several rows: one executemany (asyncpg pipelines it in one round trip, atomically)
            await conn.execute(self._settle_head, rows)
        return {}

    async def retry_later(
        self, account_id: str, seq: int, error: str, now: datetime, next_at: datetime
    ) -> Cursor:
        """One more failed attempt of `seq`; tried again from `next_at`."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, account_id, now)
            if row.head_seq != seq:
                row.head_seq, row.attempts, row.first_attempt_at = seq, 0, now
            row.attempts += 1
            row.next_attempt_at = next_at
            row.last_error = error
            row.updated_at = now
            session.add(row)
            return Cursor(account_id, row.delivered_seq, seq, row.attempts,
                          as_utc(row.first_attempt_at))  # fmt: skip

    async def dead_letter(self, letter: NewDeadLetter, now: datetime) -> None:
        """Give the change up: keep it as a dead letter and move on, in one transaction."""
        async with self._sessions() as session, session.begin():
            row = await self._row(session, letter.account_id, now)
            self._settle(row, letter.seq, now)
            session.add(row)
            session.add(
                DeadLetterRow(
                    id=letter.id, account_id=letter.account_id, seq=letter.seq,
                    kind=letter.kind, payload=letter.payload, attempts=letter.attempts,
                    last_error=letter.error, status=DeadLetterStatus.DEAD.value, dead_at=now,
                )
            )  # fmt: skip

    async def dead_letters(
        self, *, status: DeadLetterStatus | None = DeadLetterStatus.DEAD, limit: int = 100
    ) -> list[DeadLetter]:
        query = select(DeadLetterRow).order_by(col(DeadLetterRow.dead_at), col(DeadLetterRow.id))
        if status is not None:
            query = query.where(col(DeadLetterRow.status) == status.value)
        async with self._reads() as session:
            rows = (await session.execute(query.limit(limit))).scalars().all()
        return [_dead(r) for r in rows]

    async def dead_letter_page(
        self, *, account_id: str | None, after_id: str | None, limit: int
    ) -> list[DeadLetter]:
        """Dead letters still dead, oldest first, after the letter `after_id` (keyset on
        dead_at, id); of one account when `account_id` is given."""
        row = DeadLetterRow
        query = select(row).where(col(row.status) == DeadLetterStatus.DEAD.value)
        if account_id is not None:
            query = query.where(col(row.account_id) == account_id)
        async with self._sessions() as session:
            if after_id is not None:
                last = await session.get(row, after_id)
                if last is not None:
                    query = query.where(
                        or_(col(row.dead_at) > last.dead_at,
                            (col(row.dead_at) == last.dead_at) & (col(row.id) > last.id))
                    )  # fmt: skip
            query = query.order_by(col(row.dead_at), col(row.id)).limit(limit)
            rows = (await session.execute(query)).scalars().all()
        return [_dead(r) for r in rows]

    async def dead_letter_by_id(self, msg_id: str) -> DeadLetter | None:
        async with self._reads() as session:
            row = await session.get(DeadLetterRow, msg_id)
        return _dead(row) if row is not None else None

    async def claim_redelivery(self, msg_id: str, now: datetime, stale: timedelta) -> bool:
        """Take the dead letter for one redelivery; False when another has it (or it was
        redelivered). One conditional UPDATE, so of two requests at once exactly one wins; a
        claim older than `stale` (its holder died mid-attempt) may be taken again."""
        row = DeadLetterRow
        claimable = or_(
            col(row.status) == DeadLetterStatus.DEAD.value,
            (col(row.status) == DeadLetterStatus.REDELIVERING.value)
            & (col(row.redelivered_at) < now - stale),
        )
        query = (
            update(row)
            .where(col(row.id) == msg_id, claimable)
            .values(status=DeadLetterStatus.REDELIVERING.value, redelivered_at=now)
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def redelivery_failed(self, msg_id: str, error: str | None) -> None:
        """The claimed redelivery did not deliver (`error`; None: it was not attempted): the
        letter is dead again, for a later try."""
        async with self._sessions() as session, session.begin():
            row = await session.get(DeadLetterRow, msg_id)
            if row is not None:
                if error is not None:
                    row.attempts += 1
                    row.last_error = error
                row.status = DeadLetterStatus.DEAD.value
                row.redelivered_at = None
                session.add(row)

    async def redelivered(self, msg_id: str, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(DeadLetterRow, msg_id)
            if row is not None:
                row.attempts += 1
                row.status = DeadLetterStatus.REDELIVERED.value
                row.redelivered_at = now
                session.add(row)
