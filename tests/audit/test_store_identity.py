"""An audit store acknowledges an append only while it writes to the durable log it opened:
the SQLite file or its directory deleted or replaced, or the PostgreSQL connection lost, fails
the append (so the recorder fails closed) instead of writing to an unlinked file."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from audit import open_audit_log
from audit.errors import AuditWriteError
from audit.pg_store import CHAIN_LOCK
from tests.audit.helpers import make_event
from tests.conftest import _drop_pg_db, _make_pg_db


async def test_sqlite_directory_deleted_fails_the_append(tmp_path: Path) -> None:
    """After the audit directory is removed, append raises instead of acknowledging."""
    directory = tmp_path / "audit"
    directory.mkdir()
    log = await open_audit_log(f"sqlite:///{directory / 'audit.db'}")
    try:
        await log.append(make_event(1))
        shutil.rmtree(directory)
        with pytest.raises(AuditWriteError, match="replaced"):
            await log.append(make_event(2))
        with pytest.raises(AuditWriteError):  # and it keeps refusing
            await log.append(make_event(3))
    finally:
        await log.close()


async def test_sqlite_directory_replaced_fails_the_append(tmp_path: Path) -> None:
    """A fresh directory and database put where the opened ones were is not the log we opened."""
    directory = tmp_path / "audit"
    directory.mkdir()
    url = f"sqlite:///{directory / 'audit.db'}"
    log = await open_audit_log(url)
    try:
        await log.append(make_event(1))
        directory.rename(tmp_path / "aside")
        directory.mkdir()
        other = await open_audit_log(url)
        await other.close()
        with pytest.raises(AuditWriteError, match="replaced"):
            await log.append(make_event(2))
    finally:
        await log.close()
    reopened = await open_audit_log(f"sqlite:///{tmp_path / 'aside' / 'audit.db'}")
    try:
        assert [s.event.account_id for s in await reopened.query(limit=10)] == [
            make_event(1).account_id
        ]
    finally:
        await reopened.close()


async def test_sqlite_file_replaced_fails_the_append(tmp_path: Path) -> None:
    """The database file swapped for another (same directory) fails the append."""
    path = tmp_path / "audit.db"
    log = await open_audit_log(f"sqlite:///{path}")
    try:
        await log.append(make_event(1))
        path.rename(tmp_path / "old.db")
        shutil.copyfile(tmp_path / "old.db", path)
        with pytest.raises(AuditWriteError, match="replaced"):
            await log.append(make_event(2))
    finally:
        await log.close()


async def test_postgres_lost_connection_fails_the_append() -> None:
    """The store's session killed mid-append fails that append; the next one commits durably."""
    url = await _make_pg_db()
    log = await open_audit_log(url)
    admin = await asyncpg.connect(url)
    try:
        await log.append(make_event(1))
        # Hold the chain lock so the append waits inside its transaction, then kill its session.
        holder = admin.transaction()
        await holder.start()
        await admin.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
        pending = asyncio.create_task(log.append(make_event(2)))
        for _ in range(100):
            waiting = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        assert waiting, "the append never waited for the chain lock"
        await admin.execute("SELECT pg_terminate_backend($1)", waiting[0]["pid"])
        with pytest.raises(AuditWriteError):
            await pending
        await holder.rollback()
        receipt = await log.append(make_event(3))  # the pool opens a new connection
        assert receipt.seq == 2
        rows = await admin.fetch("SELECT seq FROM audit_events ORDER BY seq")
        assert [r["seq"] for r in rows] == [1, 2]  # what was acknowledged is durable, no more
    finally:
        await admin.close()
        await log.close()
        await _drop_pg_db(url)
