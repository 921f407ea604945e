"""Durable sync state and the per-account change feed, in the connector database.

Per account: the history cursor, watch expiry, last full sync, consecutive failures
(`accounts_sync_state`); the change feed (`accounts_change`, ordered by `seq`); history entries
that failed to parse (`accounts_sync_quarantine`). `commit` writes a run's changes and moves
the cursor in one transaction, so the feed never misses a change the cursor has passed and a
crash between the two is impossible. `append` adds lifecycle changes (needs relinking, scopes
changed, sending paused) without touching the cursor. After either commits, the `FeedSignal`
given is notified, which wakes this process's streams of that account's feed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete
from sqlalchemy import func as sa_func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col, select

from connector.accounts.changes import Change, ChangeKind
from connector.accounts.feed_relay import NOTIFY, notice
from connector.accounts.feed_signal import FeedSignal
from connector.accounts.models import AccountRow, ChangeRow, QuarantineRow, SyncStateRow
from connector.accounts.store import ACCOUNTS, as_utc
from connector.accounts.sync_commit import commit_params, commit_statement
from connector.clock import Clock, system_clock
from connector.db import first_row, one_statement, read_sessions, session_factory
from connector.errors import AccountNotLinkedError

MAX_PAGE = 500  # changes per feed read
# How long an unlinked account's `unlinked` row outlives the purge (for open streams, the
# webhook outbox and a platform polling late); then housekeeping drops it.
UNLINKED_KEPT = timedelta(days=7)


# The tables as Core sees them: the hot paths (a run's commit, the cursor and feed reads) are
# plain statements, without the ORM's identity map and unit of work.
_STATE = SyncStateRow.__table__  # type: ignore[attr-defined]
_CHANGE = ChangeRow.__table__  # type: ignore[attr-defined]
_QUARANTINE = QuarantineRow.__table__  # type: ignore[attr-defined]
# Read before every sync run: built once (see `first_row`).
_STATE_OF = sa.select(_STATE).where(_STATE.c.account_id == sa.bindparam("account_id"))
# A pull's accounts, read in one statement (expanding: one cache entry whatever the count).
_STATES_OF = sa.select(_STATE).where(
    _STATE.c.account_id.in_(sa.bindparam("account_ids", expanding=True))
)


@dataclass(frozen=True, slots=True)
class SyncState:
    account_id: str
    history_id: str | None = None
    watch_expires_at: datetime | None = None
    last_full_sync_at: datetime | None = None
    consecutive_failures: int = 0
    synced_at: datetime | None = None  # the last run, successful or not (or watch change)


@dataclass(frozen=True, slots=True)
class StoredChange:
    seq: int
    change: Change
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.change.as_json(), "at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class QuarantinedEntry:
    entry_id: str
    attempts: int
    reason: str
    quarantined_at: datetime | None


def stored_change(row: ChangeRow | sa.Row[Any]) -> StoredChange:
    """A feed row (ORM or Core, with the change table's column names) as a StoredChange."""
    change = Change(
        ChangeKind(row.kind), row.history_id, row.message_id, row.thread_id,
        tuple(row.label_ids), tuple(row.message_ids),
    )  # fmt: skip
    assert row.seq is not None  # read back from the table: always numbered
    created = as_utc(row.created_at)
    assert created is not None  # the column is NOT NULL
    return StoredChange(row.seq, change, created)


def _state(row: sa.Row[Any]) -> SyncState:
    return SyncState(
        row.account_id, row.history_id, as_utc(row.watch_expires_at),
        as_utc(row.last_full_sync_at), row.consecutive_failures, as_utc(row.updated_at),
    )  # fmt: skip


def _values(account_id: str, change: Change, now: datetime) -> dict[str, Any]:
    return {
        "account_id": account_id, "kind": change.kind.value, "history_id": change.history_id,
        "message_id": change.message_id, "thread_id": change.thread_id,
        "label_ids": list(change.label_ids), "message_ids": list(change.message_ids),
        "created_at": now,
    }  # fmt: skip


def _row(account_id: str, change: Change, now: datetime) -> ChangeRow:
    return ChangeRow(
        account_id=account_id, kind=change.kind.value, history_id=change.history_id,
        message_id=change.message_id, thread_id=change.thread_id,
        label_ids=list(change.label_ids), message_ids=list(change.message_ids), created_at=now,
    )  # fmt: skip


def append_rows(
    session: AsyncSession, account_id: str, changes: Sequence[Change], now: datetime
) -> list[ChangeRow]:
    """Add `changes` to the feed inside the caller's transaction (e.g. unlink's `unlinked`)."""
    rows = [_row(account_id, c, now) for c in changes]
    session.add_all(rows)
    return rows


class SyncStore:
    def __init__(
        self, engine: AsyncEngine, *, clock: Clock = system_clock, signal: FeedSignal | None = None
    ) -> None:
        self._engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._reads = read_sessions(engine)
        self._statement = one_statement(engine)
        self._clock = clock
        self.signal = signal or FeedSignal()
        # other instances on this PostgreSQL hear of each append (connector.accounts.feed_relay)
        self._postgres = engine.url.get_backend_name() == "postgresql"
        self._relayed = self._postgres

    async def _tell_others(self, conn: AsyncSession | AsyncConnection, account_id: str) -> None:
        if self._relayed:
            await conn.execute(NOTIFY, notice(account_id))

    async def state(self, account_id: str) -> SyncState:
        row = await first_row(self._statement, _STATE_OF, {"account_id": account_id})
        return SyncState(account_id) if row is None else _state(row)

    async def states(self, account_ids: Collection[str]) -> dict[str, SyncState]:
        """`state` of each of `account_ids`, in one statement (a never-synced account's is
        the empty state)."""
        found: dict[str, SyncState] = {}
        if account_ids:
            async with self._statement() as conn:
                rows = await conn.execute(_STATES_OF, {"account_ids": list(account_ids)})
                found = {row.account_id: _state(row) for row in rows}
        return {a: found.get(a) or SyncState(a) for a in account_ids}

    async def _row(self, session: AsyncSession, account_id: str) -> SyncStateRow:
        # The account's row is locked for the transaction (PostgreSQL; SQLite has one writer):
        # writers of one account's feed commit in turn, so its `seq` order is commit order and
        # a reader's cursor can never pass a change that becomes visible later.
        if await session.get(AccountRow, account_id, with_for_update=True) is None:
            raise AccountNotLinkedError(account_id)
        row = await session.get(SyncStateRow, account_id)
        return row or SyncStateRow(account_id=account_id, updated_at=self._clock())

    async def commit(
        self,
        account_id: str,
        history_id: str,
        changes: Sequence[Change],
        *,
        full_sync: bool = False,
        quarantined: Sequence[str] = (),
    ) -> list[int]:
        """Append `changes`, move the cursor, clear the failure count: all or nothing."""
        seqs = await self._commit(account_id, history_id, changes, full_sync, quarantined)
        if seqs:
            self.signal.notify(account_id)
        return seqs

    async def _commit(
        self,
        account_id: str,
        history_id: str,
        changes: Sequence[Change],
        full_sync: bool,
        quarantined: Sequence[str],
    ) -> list[int]:
        now = self._clock()
        if self._postgres and not quarantined:
            async with self._statement() as conn:  # autocommit: one round trip, not six
                found = (await conn.execute(
                    commit_statement(self._relayed),
                    commit_params(account_id, history_id, changes, now, full_sync),
                )).one()  # fmt: skip
            if found.account is None:
                raise AccountNotLinkedError(account_id)
            return sorted(found.seqs or [])
        moved: dict[str, Any] = {"history_id": history_id, "consecutive_failures": 0,
                                 "updated_at": now}  # fmt: skip
        if full_sync:
            moved["last_full_sync_at"] = now
        insert = postgresql.insert if self._postgres else sqlite.insert
        async with self._engine.begin() as conn:
            await self._lock(conn, account_id)
            seqs: list[int] = []
            if changes:
                added = await conn.execute(
                    sa.insert(_CHANGE).returning(_CHANGE.c.seq, sort_by_parameter_order=True),
                    [_values(account_id, c, now) for c in changes],
                )
                seqs = list(added.scalars())
            await conn.execute(
                insert(_STATE)
                .values(account_id=account_id, **moved)
                .on_conflict_do_update(index_elements=[_STATE.c.account_id], set_=moved)
            )
            for entry_id in quarantined:
                await conn.execute(
                    sa.update(_QUARANTINE)
                    .where(_QUARANTINE.c.account_id == account_id)
                    .where(_QUARANTINE.c.entry_id == entry_id)
                    .values(quarantined_at=now)
                )
            if seqs:
                await self._tell_others(conn, account_id)
            return seqs

    @staticmethod
    async def _lock(conn: AsyncConnection, account_id: str) -> None:
        """The account's row, locked for the transaction as `_row` does (same reason)."""
        query = sa.select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == account_id).with_for_update()
        if (await conn.execute(query)).first() is None:
            raise AccountNotLinkedError(account_id)

    async def append(self, account_id: str, changes: Sequence[Change]) -> list[int]:
        """Append lifecycle `changes` to a linked account's feed; the cursor stays where it is."""
        async with self._sessions() as session, session.begin():
            # locked as in `_row`: this account's feed writers commit in seq order
            if await session.get(AccountRow, account_id, with_for_update=True) is None:
                raise AccountNotLinkedError(account_id)
            rows = append_rows(session, account_id, changes, self._clock())
            await session.flush()
            seqs = [row.seq for row in rows if row.seq is not None]
            if rows:
                await self._tell_others(session, account_id)
        self.signal.notify(account_id)
        return seqs

    async def failed(self, account_id: str) -> int:
        """One more consecutive failed run; the new count (0 for an account not linked)."""
        async with self._sessions() as session, session.begin():
            try:
                state = await self._row(session, account_id)
            except AccountNotLinkedError:
                return 0
            state.consecutive_failures += 1
            state.updated_at = self._clock()
            session.add(state)
            return state.consecutive_failures

    async def set_watch_expiry(self, account_id: str, expires_at: datetime | None) -> None:
        async with self._sessions() as session, session.begin():
            state = await self._row(session, account_id)
            state.watch_expires_at = expires_at
            state.updated_at = self._clock()
            session.add(state)

    async def entry_failed(self, account_id: str, entry_id: str, reason: str) -> int:
        """Count one failure of a history entry (kept across runs); the attempts so far."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await session.get(QuarantineRow, (account_id, entry_id))
            if row is None:
                row = QuarantineRow(account_id=account_id, entry_id=entry_id, attempts=0,
                                    reason=reason, updated_at=now)  # fmt: skip
            row.attempts += 1
            row.reason = reason
            row.updated_at = now
            session.add(row)
            return row.attempts

    async def quarantine(self, account_id: str) -> list[QuarantinedEntry]:
        """Entries that failed at least once, oldest first; `quarantined_at` once given up on."""
        query = (
            select(QuarantineRow)
            .where(QuarantineRow.account_id == account_id)
            .order_by(col(QuarantineRow.entry_id))
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        return [
            QuarantinedEntry(r.entry_id, r.attempts, r.reason, as_utc(r.quarantined_at))
            for r in rows
        ]

    async def drop_unlinked(self, kept: timedelta = UNLINKED_KEPT) -> int:
        """Drop the `unlinked` rows of accounts gone for longer than `kept`; how many."""
        cutoff = self._clock() - kept
        linked = select(AccountRow.id)
        query = delete(ChangeRow).where(
            col(ChangeRow.kind) == ChangeKind.UNLINKED.value,
            col(ChangeRow.created_at) < cutoff,
            col(ChangeRow.account_id).not_in(linked),
        )
        async with self._sessions() as session, session.begin():
            result = await session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def last_seq(self, account_id: str) -> int:
        """The seq of the account's latest change (0 for an empty feed): "from now on"."""
        query = sa.select(sa_func.max(_CHANGE.c.seq)).where(_CHANGE.c.account_id == account_id)
        async with self._statement() as conn:
            found = (await conn.execute(query)).scalar()
        return int(found or 0)

    async def changes(
        self, account_id: str, *, after: int = 0, limit: int = MAX_PAGE
    ) -> list[StoredChange]:
        """The feed after `seq` `after`, in order, at most `limit` (capped at MAX_PAGE)."""
        query = (
            sa.select(_CHANGE)
            .where(_CHANGE.c.account_id == account_id, _CHANGE.c.seq > after)
            .order_by(_CHANGE.c.seq)
            .limit(max(1, min(limit, MAX_PAGE)))
        )
        async with self._statement() as conn:
            rows = (await conn.execute(query)).all()
        return [stored_change(row) for row in rows]
