"""The audit package's exceptions.

    AuditError
    ├── AuditWriteError        append() could not commit; callers fail closed
    │   └── AuditStoreReplacedError  the database file or its directory is not the one opened
    ├── NotAnAuditLogError     the database exists but carries no audit-log marker
    ├── AuditLogUnavailableError  the URL names nothing that opens as a database (CLI checks)
    ├── SchemaVersionError     the database was written by a newer schema than this code knows
    ├── AuditPrivilegeError    a restricted opener's login may change or remove audit rows
    └── MigrationRefusedError  the login may not create or migrate the schema (not the owner)

`InvalidEventError` (audit.event) is a ValueError raised before anything reaches the chain.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class for audit store failures."""


class AuditWriteError(AuditError):
    """The event was not committed; nothing may be served on its strength."""


class AuditStoreReplacedError(AuditWriteError):
    """The SQLite file (or its directory) was deleted or replaced since it was opened: what
    the open connection writes would land in an unlinked file and vanish on restart."""


class NotAnAuditLogError(AuditError):
    """The URL names a database that is not an audit log (no marker in `audit_meta`)."""


class AuditLogUnavailableError(AuditError):
    """The URL names no database that can be opened: no such file, a directory, a file that is
    not SQLite, or a PostgreSQL server that refuses the connection or the login."""


class SchemaVersionError(AuditError):
    """The audit schema in the database is newer than this code understands."""


class AuditPrivilegeError(AuditError):
    """The login may do more than INSERT and SELECT on the audit tables (`audit.pg_roles`)."""

    def __init__(self, url: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"the audit log login at {url} may change or remove audit rows: "
            + "; ".join(problems)
            + ". Log in as audit_writer (INSERT and SELECT only) and run the migrations "
            "separately as the owner"
        )


class MigrationRefusedError(AuditError):
    """The schema needs creating or migrating and this login lacks the owner's rights."""
