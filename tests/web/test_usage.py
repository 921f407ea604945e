"""The buffered usage counter: one upsert per flush that adds to what is stored, both engines."""

from __future__ import annotations

from datetime import date

from connector.db import create_engine, migrate
from connector.policy.ports import UsageCount
from connector.policy.usage import BufferedUsageCounter

DAY = date(2026, 11, 21)


async def test_flushes_add_to_stored_counts(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate(engine)
    counter = BufferedUsageCounter(engine, interval=3600)
    try:
        for _ in range(3):
            await counter.increment("acct1", DAY, "content_read", error=False)
        await counter.increment("acct1", DAY, "content_read", error=True)
        await counter.increment("acct2", DAY, "send", error=False)
        await counter.flush()
        for _ in range(2):  # a second flush must add, not overwrite
            await counter.increment("acct1", DAY, "content_read", error=True)
        counts = await counter.counts(DAY, DAY)  # flushes what is pending first
        assert sorted(counts, key=lambda c: c.account_id) == [
            UsageCount("acct1", DAY, "content_read", 6, 3),
            UsageCount("acct2", DAY, "send", 1, 0),
        ]
    finally:
        await counter.close()
        await engine.dispose()
