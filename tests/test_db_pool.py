"""A busy service reuses its PostgreSQL connections. With SQLAlchemy's default pool (5 kept,
10 more closed on return) most checkouts of 20 concurrent tasks opened a new connection: a TCP
and TLS handshake, a server backend forked, the prepared-statement cache lost, every time."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from connector.db import DEFAULT_PG_POOL_SIZE, create_engine
from connector.settings import Settings


async def test_twenty_concurrent_tasks_reuse_the_connections_they_opened(
    pg_database: str,
) -> None:
    engine = create_engine(pg_database)
    opened: list[Any] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))

    async def query() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.02)"))

    try:
        for _ in range(5):
            await asyncio.gather(*(query() for _ in range(DEFAULT_PG_POOL_SIZE)))
        assert len(opened) == DEFAULT_PG_POOL_SIZE  # opened in the first round, kept after
    finally:
        await engine.dispose()


async def test_the_pool_size_can_be_chosen(pg_database: str) -> None:
    engine = create_engine(pg_database, pool_size=3)
    try:
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


def test_the_service_default_is_the_engines_default() -> None:
    assert Settings.model_fields["db_pool_size"].default == DEFAULT_PG_POOL_SIZE
