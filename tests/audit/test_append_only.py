"""The engine itself refuses to change or remove audit rows."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from audit import open_audit_log
from audit.schema import APPEND_ONLY_TABLES, WRITER_ROLE
from audit.signing import generate_key
from tests.audit.helpers import login_as, make_event, sqlite_path


async def seeded(url: str) -> None:
    # With a signing key every table has rows (row triggers fire only on existing rows).
    log = await open_audit_log(url, signing_key=generate_key())
    for i in range(3):
        await log.append(make_event(i))
    await log.close()


async def test_sqlite_triggers_refuse_update_and_delete(tmp_path) -> None:
    """On SQLite every audit table rejects UPDATE and DELETE, even from a raw connection."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    await seeded(url)
    conn = sqlite3.connect(sqlite_path(url))
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only: UPDATE refused"):
            conn.execute("UPDATE audit_events SET account_id = 'x' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only: DELETE refused"):
            conn.execute("DELETE FROM audit_events")
        for table in APPEND_ONLY_TABLES:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(f"DELETE FROM {table}")
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 3
    finally:
        conn.close()


async def test_postgres_triggers_refuse_even_the_superuser(pg_database: str) -> None:
    """On PostgreSQL UPDATE, DELETE and TRUNCATE fail in triggers even for a superuser."""
    await seeded(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: UPDATE"):
            await conn.execute("UPDATE audit_events SET account_id = 'x' WHERE seq = 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: DELETE"):
            await conn.execute("DELETE FROM audit_events WHERE seq = 1")
        for table in APPEND_ONLY_TABLES:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: TRUNCATE"):
                await conn.execute(f"TRUNCATE {table} CASCADE")
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 3
    finally:
        await conn.close()


async def test_postgres_writer_role_holds_only_select_and_insert(pg_database: str) -> None:
    """The service role cannot update, delete, truncate, or drop the triggers."""
    await seeded(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute(f"SET ROLE {WRITER_ROLE}")
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 3
        for statement in (
            "UPDATE audit_events SET account_id = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "DROP TRIGGER audit_events_no_change ON audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "DELETE FROM audit_checkpoints",
            "INSERT INTO audit_meta VALUES ('x', 'y')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_postgres_sessions_have_exactly_their_logins_rights(pg_database: str) -> None:
    """No SET ROLE: a pooled session runs as exactly the URL's login."""
    await seeded(pg_database)
    for url, role in ((pg_database, "postgres"), (login_as(pg_database, WRITER_ROLE), WRITER_ROLE)):
        log = await open_audit_log(url, create=False)
        try:
            pool = log.store.pool  # type: ignore[attr-defined]
            assert await pool.fetchval("SELECT current_user") == role
            assert await pool.fetchval("SELECT session_user") == role
        finally:
            await log.close()
