"""Several service instances start at once on one fresh database: their migrations must not
race (alembic alone would have two of them create the same tables)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from connector.db import BASELINE, LEGACY_HEADS, MIGRATIONS_DIR, create_engine, migrate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_concurrent_migrations_on_a_fresh_database_all_succeed(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        async with engines[0].connect() as conn:
            heads = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert heads == [(BASELINE,)]
        await migrate(engines[1])  # and again: nothing to do
    finally:
        for engine in engines:
            await engine.dispose()


async def _heads(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in rows}


async def test_one_line_of_history_ends_at_one_head(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        assert await _heads(engine) == {BASELINE}
    finally:
        await engine.dispose()


async def test_a_database_at_the_old_per_package_heads_is_restamped_and_keeps_its_rows(
    db_url: str,
) -> None:
    """Development builds before 0.1.0 left six branch heads; their schema is the baseline's."""
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
            for head in sorted(LEGACY_HEADS):
                await conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
            await conn.execute(
                text("INSERT INTO webclient_ended_session VALUES ('s1', :t)"), {"t": T0}
            )
        await migrate(engine)
        assert await _heads(engine) == {BASELINE}
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT sid FROM webclient_ended_session"))).all()
        assert kept == [("s1",)]
    finally:
        await engine.dispose()


def _model_drift(connection: Connection) -> list[tuple[object, ...]]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, SQLModel.metadata) if isinstance(d, tuple)]


async def test_migrations_create_every_table_column_and_index_the_models_declare(
    db_url: str,
) -> None:
    """A model that gains a column needs a migration; autogenerate would otherwise be the first to
    notice. (Tables that only Core statements use have no model, so removals are expected.)"""
    import connector.wiring  # noqa: F401 - imports every model into SQLModel.metadata

    engine = create_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            drift = await conn.run_sync(_model_drift)
        assert [d for d in drift if not str(d[0]).startswith("remove_")] == []
    finally:
        await engine.dispose()


async def test_downgrade_drops_only_the_connectors_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE platform_own (id INTEGER PRIMARY KEY)"))
            await conn.run_sync(_downgrade_to_base)
        async with engine.connect() as conn:
            left = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert left == {"platform_own", "alembic_version"}
    finally:
        await engine.dispose()


def _downgrade_to_base(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.downgrade(config, "base")
