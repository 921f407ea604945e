"""The one port through which anything writes to the audit log."""

from __future__ import annotations

from typing import Protocol

from audit.event import AppendReceipt, AuditEvent


class AuditSink(Protocol):
    async def append(self, event: AuditEvent) -> AppendReceipt:
        """Durably commit `event` to the chain; return only once it is committed.

        Raises on any failure; callers fail closed (no record, no data).
        """
        ...
