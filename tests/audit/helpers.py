"""Event factories, scratch audit databases and behind-the-engine's-back database access for
the audit tests."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from audit import (
    Action,
    Actor,
    ActorKind,
    AuditEvent,
    Decision,
    Outcome,
    Purpose,
    ResourceKind,
    ResourceRef,
)
from tests.conftest import _drop_pg_db, _make_pg_db

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def scratch_audit_url(engine: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty audit database: a SQLite file under `tmp_path`, or (`engine`
    "postgres") a fresh PostgreSQL database, dropped afterwards."""
    url = f"sqlite:///{tmp_path / 'audit.db'}" if engine == "sqlite" else await _make_pg_db()
    try:
        yield url
    finally:
        if engine == "postgres":
            await _drop_pg_db(url)


def make_event(i: int, *, account: str | None = None, deny: bool = False) -> AuditEvent:
    """A varied, valid event: accounts a0..a4, actors u0..u2, alternating actions."""
    return AuditEvent(
        actor=Actor(ActorKind.USER, f"u{i % 3}"),
        action=Action.GMAIL_MESSAGE_READ if i % 2 == 0 else Action.GMAIL_MESSAGE_SEND,
        decision=Decision.DENY if deny else Decision.ALLOW,
        outcome=Outcome.DENIED if deny else Outcome.OK,
        account_id=account or f"a{i % 5}",
        purpose=Purpose.USER_FEATURE if i % 4 else Purpose.SECURITY,
        resources=(ResourceRef(ResourceKind.MESSAGE, f"m_{i}"),),
        reasons=("forbidden_purpose",) if deny else (),
        time=T0 + timedelta(seconds=i),
    )


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


async def raw_execute(url: str, statements: Sequence[str]) -> None:
    """Run SQL with the engine's protections switched off, as an attacker with file/superuser
    access would: SQLite triggers dropped, PostgreSQL triggers disabled for the session."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
            ]
            conn.execute("BEGIN")
            for name in names:
                conn.execute(f"DROP TRIGGER {name}")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def raw_fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def login_as(url: str, role: str) -> str:
    """The same PostgreSQL database, logged in as `role` (the test server trusts local logins)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"
