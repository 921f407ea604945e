"""Several service instances start at once on one fresh database: their migrations must not
race (alembic alone would have two of them create the same tables)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from connector.db import create_engine, migrate


async def test_concurrent_migrations_on_a_fresh_database_all_succeed(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        async with engines[0].connect() as conn:
            heads = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert len(heads) == len({h[0] for h in heads}) >= 1  # each branch's head once
        await migrate(engines[1])  # and again: nothing to do
    finally:
        for engine in engines:
            await engine.dispose()
