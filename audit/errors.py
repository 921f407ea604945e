"""The audit package's exceptions.

    AuditError
    ├── AuditWriteError        append() could not commit; callers fail closed
    │   └── AuditStoreReplacedError  the database file or its directory is not the one opened
    ├── NotAnAuditLogError     the database exists but carries no audit-log marker
    └── SchemaVersionError     the database was written by a newer schema than this code knows

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


class SchemaVersionError(AuditError):
    """The audit schema in the database is newer than this code understands."""
