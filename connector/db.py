"""Async engine and sessions for the connector's own tables (SQLite by default, PostgreSQL by URL).

The audit log has its own store in the `audit` package; this module is for accounts, encrypted
credentials, consents and access requests. Schema changes are Alembic migrations
(`connector/migrations`), applied by `connector migrate` and at service start-up.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.dml import Update

from connector.errors import SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in {"sqlite", "sqlite+pysqlite"}:
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# Connections kept open per process on PostgreSQL. SQLAlchemy's default (5, and 10 more that
# are closed on return) made a busy service open and close a connection for most checkouts:
# a TCP and TLS handshake, a server backend forked, the prepared-statement cache lost. There is
# no overflow either: the live mailbox and the webhook dispatcher run more tasks at once than
# this, and connections opened past the pool for them were closed again on return, over and
# over. Past the pool, a task waits its turn for a kept connection.
DEFAULT_PG_POOL_SIZE = 20


def create_engine(url: str, *, pool_size: int | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`; on PostgreSQL a pool of `pool_size` kept connections, and no
    more."""
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql":
        size = pool_size or DEFAULT_PG_POOL_SIZE
        kwargs.setdefault("pool_size", size)
        kwargs.setdefault("max_overflow", 0)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def _autocommit(engine: AsyncEngine) -> AsyncEngine | None:
    """`engine` in autocommit on PostgreSQL (same pool); None elsewhere. On SQLite a transaction
    costs no round trip, and switching a connection to autocommit costs two hops to its thread."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def one_statement(engine: AsyncEngine) -> Connect:
    """Connections for work of one statement, atomic on its own (a conditional UPDATE, an
    INSERT ... ON CONFLICT, a read). On PostgreSQL in autocommit: the statement is its own
    transaction, one round trip instead of three (BEGIN, it, COMMIT). On SQLite in a transaction
    committed on leaving."""
    auto = _autocommit(engine)
    return engine.begin if auto is None else auto.connect


async def first_row(
    connect: Connect, query: sa.Select[Any], params: dict[str, Any] | None = None
) -> sa.Row[Any] | None:
    """The first row of one read through `connect` (e.g. `one_statement(engine)`). A hot read
    passes a query built once with bind parameters and its `params`: building the query and
    its cache key on every call costs as much CPU as a third of running it."""
    async with connect() as conn:
        row: sa.Row[Any] | None = (await conn.execute(query, params)).first()
    return row


def read_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads of one statement. On PostgreSQL they send no BEGIN and no ROLLBACK
    around it: each is a round trip of its own, two of the three such a read costs (and a third
    of its CPU here); one statement is atomic on its own. Never for reads that must share one
    snapshot, never for writes. SQLite keeps the plain sessions (see `_autocommit`)."""
    return session_factory(_autocommit(engine) or engine)


# Development builds before 0.1.0 kept one alembic branch per package. A database they brought
# to these heads has exactly the schema of the one baseline revision that replaced them.
LEGACY_HEADS = frozenset(
    {"accounts_0004", "delivery_0001", "inbox_0001", "live_0002", "policy_0001", "webclient_0001"}
)
BASELINE = "connector_0001"


def _restamp_legacy(connection: Connection) -> None:
    """Move a database at the old per-package heads onto the baseline (same schema, new id)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return
    heads = set(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    if heads == LEGACY_HEADS:
        connection.execute(sa.text("DELETE FROM alembic_version"))
        connection.execute(
            sa.text("INSERT INTO alembic_version (version_num) VALUES (:baseline)"),
            {"baseline": BASELINE},
        )


def _refuse_unknown(connection: Connection, config: Config) -> None:
    """A revision this build has no script for would make alembic fail with a traceback."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = sorted(set(current) - known)
    if unknown:
        raise SchemaVersionError(unknown)


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    _restamp_legacy(connection)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    _refuse_unknown(connection, config)
    command.upgrade(config, "head")


def _locked(path: Path) -> int:
    """An exclusive lock on `path` (created if missing), waited for; the open descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


# Any constant shared by every instance: the key of the PostgreSQL advisory lock migrations hold.
MIGRATION_LOCK = 0x636F6E6E6D6967  # "connmig"


async def migrate(engine: AsyncEngine) -> None:
    """Apply the migrations up to the head on this engine. Several instances starting at
    once take turns: PostgreSQL through an advisory lock held for the transaction, a SQLite file
    through an exclusive lock on a file beside it; the later ones then find nothing to do."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        fd = await asyncio.to_thread(_locked, Path(f"{url.database}.migrate-lock"))
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
        finally:
            os.close(fd)  # closing releases the lock
        return
    async with engine.begin() as connection:
        if url.get_backend_name() == "postgresql":
            await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        await connection.run_sync(_upgrade)


# Failures that mean "the database cannot be reached right now", not "this request is wrong":
# refused or dropped connections, a server shutting down, a pool or connect timeout, a locked
# SQLite file. They answer 503 + Retry-After (connector.web.errors), never 500.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # ConnectionDoesNotExistError: closed in the middle of an operation
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
)
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what it wraps) says the database is unreachable for now."""
    seen: BaseException | None = exc
    for _ in range(8):  # SQLAlchemy wraps the driver's error, which may wrap an OSError
        if seen is None:
            return False
        if isinstance(seen, _UNREACHABLE):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sqlite3.OperationalError) and str(seen).lower().startswith(
            _SQLITE_TRANSIENT
        ):
            return True
        wrapped = seen.orig if isinstance(seen, sa_exc.DBAPIError) else None
        seen = wrapped if isinstance(wrapped, BaseException) else seen.__cause__
    return False


def aware(value: datetime) -> datetime:
    """A stored timestamp as UTC-aware: SQLite hands DateTime(timezone=True) back naive."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc_column(nullable: bool = False) -> sa.Column[datetime]:
    """A timestamp column that keeps its time zone (read it back through `aware`)."""
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


# `SET LOCAL` lasts for the transaction it runs in; the statement is a no-op outside PostgreSQL.
_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit TO OFF")


# Evaluated once inside the statement (an uncorrelated subquery), for that statement's own
# implicit transaction alone (is_local).
_FLUSH_WAIT_OFF = (
    sa.select(sa.func.set_config("synchronous_commit", "off", sa.true()))
    .scalar_subquery()
    .is_not(None)
)


def without_flush_wait(statement: Update, engine: AsyncEngine) -> Update:
    """`statement`, run through `one_statement`, committing without waiting for its WAL flush,
    as `commit_without_flush_wait` does for a transaction, with the same rule of use. The
    statement makes the setting itself, so it costs no round trip."""
    return statement.where(flush_wait_off(engine))


def flush_wait_off(engine: AsyncEngine) -> sa.ColumnElement[bool]:
    """A condition that is always true and, on PostgreSQL, makes the statement it is part of
    commit without waiting for its WAL flush (`without_flush_wait`'s rule of use): for a
    statement `without_flush_wait` cannot take, such as an upsert's ON CONFLICT branch."""
    return _FLUSH_WAIT_OFF if engine.dialect.name == "postgresql" else sa.true()


async def commit_without_flush_wait(conn: AsyncConnection | AsyncSession) -> None:
    """Let this PostgreSQL transaction commit without waiting for its WAL flush (about 3 ms a
    commit on this machine's disk, 0.4 ms without). Only for writes whose loss at a server
    crash (the last few hundred ms of them) is harmless: a lease let go early (it then runs out
    on its own) or a delivery cursor moved (the change is delivered again, with the same event
    id). Never for the feed, the audit log or anything a caller acknowledges."""
    dialect = (conn.get_bind() if isinstance(conn, AsyncSession) else conn).dialect
    if dialect.name == "postgresql":
        await conn.execute(_ASYNC_COMMIT)


async def _migrate_url(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def migrate_or_explain(url: str) -> str | None:
    """For the command line, before any loop runs: migrate the database at `url`; None, or the
    one line that says why it could not be (a path that is no database, a server that refuses,
    a revision this build does not know), the path left as it was."""
    from audit.cli_target import check_target, redacted
    from audit.errors import AuditLogUnavailableError

    try:
        check_target(url, create=True)
        asyncio.run(_migrate_url(url))
    except AuditLogUnavailableError as exc:
        return f"cannot open the database: {exc}"
    except SchemaVersionError as exc:
        return f"{redacted(url)}: {exc}"
    except sa_exc.SQLAlchemyError as exc:  # a refused login, a missing database, a damaged file
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return f"{redacted(url)}: {reason}"
    except OSError as exc:  # a server that refuses or cannot be reached
        return f"{redacted(url)}: cannot connect: {exc.strerror or exc}"
    return None
