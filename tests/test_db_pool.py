"""A busy service reuses its PostgreSQL connections. With SQLAlchemy's default pool (5 kept,
10 more closed on return) most checkouts of 20 concurrent tasks opened a new connection: a TCP
and TLS handshake, a server backend forked, the prepared-statement cache lost, every time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from connector.db import (
    DEFAULT_PG_POOL_SIZE,
    commit_without_flush_wait,
    create_engine,
    one_statement,
    read_sessions,
    session_factory,
    without_flush_wait,
)
from connector.settings import Settings


async def _connections_opened(engine: AsyncEngine, rounds: int, tasks: int) -> int:
    """How many connections `engine` opens for `rounds` of `tasks` concurrent short queries."""
    opened: list[Any] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))

    async def query() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.01)"))

    try:
        for _ in range(rounds):
            await asyncio.gather(*(query() for _ in range(tasks)))
        return len(opened)
    finally:
        await engine.dispose()


async def test_twenty_concurrent_tasks_reuse_the_connections_they_opened(
    pg_database: str,
) -> None:
    # opened in the first round, kept after
    opened = await _connections_opened(create_engine(pg_database), 5, DEFAULT_PG_POOL_SIZE)
    assert opened == DEFAULT_PG_POOL_SIZE


async def test_more_tasks_than_connections_wait_for_one_instead_of_opening_more(
    pg_database: str,
) -> None:
    """The live mailbox and the webhook dispatcher run more tasks at once than the pool holds.
    Connections opened beyond the pool were closed on return: a backend forked on the server
    and a TCP handshake for one statement, on the same two cores, over and over."""
    assert await _connections_opened(create_engine(pg_database, pool_size=4), 3, 12) == 4


async def test_one_statement_reads_send_no_begin_on_postgresql(pg_database: str) -> None:
    """The server's view: in a read session each statement is a transaction of its own (no
    BEGIN and ROLLBACK sent around it, two round trips saved); a plain session wraps them."""
    engine = create_engine(pg_database)
    xid = text("SELECT txid_current()")
    try:
        async with read_sessions(engine)() as session:
            first, second = [(await session.execute(xid)).scalar() for _ in range(2)]
        assert first != second
        async with session_factory(engine)() as session:
            first, second = [(await session.execute(xid)).scalar() for _ in range(2)]
        assert first == second
    finally:
        await engine.dispose()


async def test_a_one_statement_write_is_its_own_transaction_and_committed(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)"))
        async with one_statement(engine)() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1, 1)"))
        async with one_statement(engine)() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_without_flush_wait_sets_it_for_its_own_statement_only(pg_database: str) -> None:
    """The server's view: the UPDATE's own transaction commits with synchronous_commit off; the
    next statement on the same connection has the server's setting again."""
    engine = create_engine(pg_database, pool_size=1)
    table = sa.table("t", sa.column("k", sa.Integer), sa.column("v", sa.Integer))
    setting = sa.func.current_setting("synchronous_commit")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1, 0)"))
        statement = sa.update(table).where(table.c.k == 1).values(v=2).returning(setting)
        async with one_statement(engine)() as conn:
            during = (await conn.execute(without_flush_wait(statement, engine))).scalar()
            after = (await conn.execute(sa.select(setting))).scalar()
        assert (during, after) == ("off", "on")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalar() == 2
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


async def test_a_transaction_can_skip_the_wal_flush_wait_and_only_that_one(
    pg_database: str,
) -> None:
    """`commit_without_flush_wait` lasts for its own transaction (SET LOCAL): the next
    transaction on the same pooled connection commits with the flush wait again."""
    engine = create_engine(pg_database, pool_size=1)
    try:
        async with engine.begin() as conn:
            await commit_without_flush_wait(conn)
            inside = await conn.scalar(text("SHOW synchronous_commit"))
        async with engine.begin() as conn:
            after = await conn.scalar(text("SHOW synchronous_commit"))
        async with session_factory(engine)() as session, session.begin():
            await commit_without_flush_wait(session)
            in_session = await session.scalar(text("SHOW synchronous_commit"))
        assert (inside, after, in_session) == ("off", "on", "off")
    finally:
        await engine.dispose()


async def test_skipping_the_flush_wait_is_a_no_op_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.begin() as conn:
            await commit_without_flush_wait(conn)
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
