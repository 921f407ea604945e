"""A buffered `UsageCounter`: accesses are counted in memory and flushed in one upsert batch.

The counts feed k-anonymous statistics, not evidence (the audit log is the evidence), so a
per-access write transaction on SQLite (one fsync each, serialized) is not worth its cost.
Flushed every `interval` seconds, before every read of the counts, and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import date

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.policy.aggregates import SqlUsageCounter
from connector.policy.models import UsageRow, table
from connector.policy.ports import UsageCount


class BufferedUsageCounter:
    def __init__(self, engine: AsyncEngine, *, interval: float = 1.0) -> None:
        self._engine = engine
        self._sql = SqlUsageCounter(engine)
        self._pending: defaultdict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0])
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def increment(self, account_id: str, day: date, operation: str, *, error: bool) -> None:
        entry = self._pending[(account_id, day, operation)]
        entry[0] += 1
        entry[1] += int(error)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._later(), name="usage-flush")

    async def _later(self) -> None:
        await asyncio.sleep(self._interval)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: [0, 0])
            if not pending:
                return
            t = table(UsageRow)
            dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
            # One statement, many parameter sets (executemany): one round trip per flush
            # instead of one compiled statement per (account, day, operation).
            insert = dialect.insert(t)
            stmt = insert.on_conflict_do_update(
                index_elements=[t.c.account_id, t.c.day, t.c.operation],
                set_={"count": t.c["count"] + insert.excluded["count"],
                      "error_count": t.c.error_count + insert.excluded.error_count},
            )  # fmt: skip
            rows = [
                {"account_id": account_id, "day": day, "operation": operation, "count": count,
                 "error_count": errors}
                for (account_id, day, operation), (count, errors) in pending.items()
            ]  # fmt: skip
            async with self._engine.begin() as conn:
                await conn.execute(stmt, rows)

    async def counts(self, start: date, end: date) -> list[UsageCount]:
        await self.flush()
        return await self._sql.counts(start, end)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
