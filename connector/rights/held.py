"""What the connector keeps about an account besides its record and policy rows, for the export:
the sync state (cursor, watch expiry, last full sync, failures) and the change feed's shape
(entries by kind, first and last seq). Ids, times and counts only, never the feed's Gmail ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.accounts.models import ChangeRow, SyncStateRow
from connector.accounts.store import as_utc
from connector.db import session_factory
from connector.policy.models import table


def _iso(value: Any) -> str | None:
    moment = as_utc(value)
    return None if moment is None else moment.isoformat()


async def sync_state(engine: AsyncEngine, account_id: str) -> dict[str, Any] | None:
    """The account's sync state, None before its first sync."""
    rows = table(SyncStateRow)
    query = select(rows.c.history_id, rows.c.updated_at, rows.c.watch_expires_at,
                   rows.c.last_full_sync_at, rows.c.consecutive_failures,
                   ).where(rows.c.account_id == account_id)  # fmt: skip
    async with session_factory(engine)() as session:
        row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return {
        "history_id": row.history_id, "updated_at": _iso(row.updated_at),
        "watch_expires_at": _iso(row.watch_expires_at),
        "last_full_sync_at": _iso(row.last_full_sync_at),
        "consecutive_failures": int(row.consecutive_failures),
    }  # fmt: skip


async def feed_summary(engine: AsyncEngine, account_id: str) -> dict[str, Any]:
    """The account's change feed as counts: entries in all and by kind, first and last seq."""
    rows = table(ChangeRow)
    query = (
        select(rows.c.kind, func.count(), func.min(rows.c.seq), func.max(rows.c.seq))
        .where(rows.c.account_id == account_id)
        .group_by(rows.c.kind)
    )
    async with session_factory(engine)() as session:
        found = (await session.execute(query)).all()
    firsts = [int(first) for _kind, _n, first, _last in found]
    lasts = [int(last) for _kind, _n, _first, last in found]
    return {
        "entries": sum(int(n) for _kind, n, _first, _last in found),
        "by_kind": {str(kind): int(n) for kind, n, _first, _last in sorted(found)},
        "first_seq": min(firsts, default=None),
        "last_seq": max(lasts, default=None),
    }
