"""Opening a database named on a command line, without surprises.

A command given a path that is not a database must say so in one line and leave the path as
it was: sqlite3 would otherwise turn an empty file into a database (the WAL pragma writes a
header), create a missing one, or end in a `sqlite3.DatabaseError` traceback; a PostgreSQL
server that refuses would end in an OSError or asyncpg traceback. `check_target` looks at a
SQLite path before anything opens it; `open_cli_log` opens an audit log and turns every
failure to reach a database into `AuditLogUnavailableError`. Messages never hold a password.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from audit.errors import AuditLogUnavailableError
from audit.log import AuditLog, migrate_audit_log, open_audit_log

SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def redacted(url: str) -> str:
    """`url` fit for a message: no password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def sqlite_path(url: str) -> str | None:
    """The file a `sqlite[+driver]:///PATH` URL names; None for another scheme."""
    if urlsplit(url).scheme.split("+", 1)[0] != "sqlite":
        return None
    return url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""


def check_target(url: str, *, create: bool = False) -> None:
    """Refuse a SQLite URL whose path is not an existing SQLite database file.

    With `create` (migrations) a missing or empty file is accepted: it becomes the database.
    """
    path = sqlite_path(url)
    if path is None:
        return
    if path in ("", ":memory:"):
        raise AuditLogUnavailableError(f"{url} names no file: use sqlite:///PATH")
    target = Path(path)
    if not target.exists():
        if create:
            return
        raise AuditLogUnavailableError(f"{path} does not exist")
    if target.is_dir():
        raise AuditLogUnavailableError(f"{path} is a directory, not a database file")
    if not target.is_file():
        raise AuditLogUnavailableError(f"{path} is not a regular file")
    try:
        with target.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise AuditLogUnavailableError(f"{path} cannot be read: {exc.strerror}") from None
    if not header and create:
        return
    if not header:
        raise AuditLogUnavailableError(f"{path} is an empty file, not a database")
    if header != SQLITE_HEADER:
        raise AuditLogUnavailableError(f"{path} is not a SQLite database")
    if not os.access(path, os.W_OK):
        raise AuditLogUnavailableError(f"{path} is not writable (commands record their own use)")


@contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Every failure to reach the database at `url` as AuditLogUnavailableError."""
    try:
        yield
    except sqlite3.DatabaseError as exc:  # a damaged file past its header
        raise AuditLogUnavailableError(f"{redacted(url)}: SQLite: {exc}") from None
    except asyncpg.PostgresError as exc:  # a refused login, a missing database
        raise AuditLogUnavailableError(f"{redacted(url)}: PostgreSQL: {exc}") from None
    except OSError as exc:  # a server that refuses or cannot be reached
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise AuditLogUnavailableError(f"{redacted(url)}: cannot connect: {reason}") from None


async def open_cli_log(url: str) -> AuditLog:
    """The existing audit log at `url`, or AuditLogUnavailableError saying why not."""
    check_target(url)
    with _reaching(url):
        return await open_audit_log(url, create=False)


async def migrate_cli_log(url: str) -> int:
    """Create or migrate the audit schema at `url` (a missing or empty SQLite file becomes it)."""
    check_target(url, create=True)
    with _reaching(url):
        return await migrate_audit_log(url)
