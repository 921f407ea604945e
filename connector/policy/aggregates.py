"""Aggregates for internal operations: counts across accounts, no identifiers, k-anonymous.

The gate counts every access per account, day and operation (`policy_usage`). Operators see only
sums over groups (day and operation) that span at least `k` distinct accounts; smaller groups are
suppressed entirely, and the result never names an account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.policy.models import UsageRow, table
from connector.policy.ports import UsageCount

DEFAULT_K = 5


@dataclass(frozen=True, slots=True)
class AggregateRow:
    day: date
    operation: str
    count: int
    error_count: int

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class AggregateReport:
    rows: tuple[AggregateRow, ...]
    suppressed_groups: int  # groups withheld because fewer than k accounts contributed
    k: int


def aggregate(counts: Iterable[UsageCount], k: int = DEFAULT_K) -> AggregateReport:
    """Sum per (day, operation); drop every group with fewer than `k` distinct accounts."""
    if k < 2:
        raise ValueError("k must be at least 2: a group of one account identifies it")
    groups: dict[tuple[date, str], tuple[set[str], int, int]] = {}
    for c in counts:
        accounts, total, errors = groups.setdefault((c.day, c.operation), (set(), 0, 0))
        accounts.add(c.account_id)
        groups[(c.day, c.operation)] = (accounts, total + c.count, errors + c.error_count)
    rows: list[AggregateRow] = []
    suppressed = 0
    for (day, operation), (accounts, total, errors) in sorted(groups.items()):
        if len(accounts) < k:
            suppressed += 1
            continue
        rows.append(AggregateRow(day, operation, total, errors))
    return AggregateReport(tuple(rows), suppressed, k)


class SqlUsageCounter:
    """`UsageCounter` on the connector database (an upsert per access, no content)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._table = table(UsageRow)

    async def increment(self, account_id: str, day: date, operation: str, *, error: bool) -> None:
        values = {
            "account_id": account_id,
            "day": day,
            "operation": operation,
            "count": 1,
            "error_count": int(error),
        }
        t = self._table
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(t).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.account_id, t.c.day, t.c.operation],
            set_={
                "count": t.c["count"] + 1,
                "error_count": t.c.error_count + int(error),
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def counts(self, start: date, end: date) -> list[UsageCount]:
        t = self._table
        query = sa.select(t).where(t.c.day >= start, t.c.day <= end).order_by(t.c.day)
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [
                UsageCount(r.account_id, r.day, r.operation, r._mapping["count"], r.error_count)
                for r in result
            ]
