"""Reading the audit trail: reviewers (query, verify, export) and owners (their access history).

Each read is itself decided by the policy and recorded by the one recorder before any event is
returned: a reviewer's query is evidence too. Owners never see events under legal hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

from audit import AuditLog, MemoryAuditLog
from audit.event import Actor, ResourceRef
from audit.export import ExportFormat, export_lines
from audit.records import QueryFilter, StoredEvent
from audit.trust import TrustedKeys
from audit.verify import VerifyReport
from audit.vocab import Action, Purpose, ResourceKind
from connector.policy.authority import Authority
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

HISTORY_PAGE = 500


# The two logs the connector runs on, named rather than re-declared as a protocol (which would
# copy their `query`/`iter_events`/`verify` signatures): a third log would be added here.
ReadableLog = AuditLog | MemoryAuditLog


@dataclass(frozen=True, slots=True)
class Page:
    events: list[StoredEvent]
    next_after: int | None


@dataclass(eq=False)
class Oversight:
    log: ReadableLog
    authority: Authority
    _: KW_ONLY
    # The pinned checkpoint keys (CONNECTOR_AUDIT_TRUSTED_KEYS_FILE); without them a
    # verification proves consistency only, and its report says so.
    trusted: TrustedKeys | None = None
    # The checkpoints copied outside the database (CONNECTOR_AUDIT_WITNESS_FILE), which catch a
    # log cut shorter together with its checkpoints.
    witness: Path | None = None

    async def _permit(
        self,
        actor: Actor,
        operation: Operation,
        purpose: Purpose,
        action: Action,
        *,
        account_id: str | None = None,
        request_id: str | None = None,
        resources: tuple[ResourceRef, ...] = (),
    ) -> None:
        await self.authority.permit(
            Change(
                actor, operation, action, purpose, account_id=account_id, resources=resources,
                request_id=request_id,
            )
        )  # fmt: skip

    # -- reviewers --------------------------------------------------------------------------

    async def query(
        self,
        actor: Actor,
        purpose: Purpose,
        filters: QueryFilter,
        *,
        limit: int,
        after_seq: int | None,
        request_id: str | None,
    ) -> Page:
        await self._permit(
            actor, Operation.AUDIT_READ, purpose, Action.AUDIT_QUERIED,
            request_id=request_id, resources=_range(after_seq, limit),
        )  # fmt: skip
        events = await self.log.query(filters, limit=limit, after_seq=after_seq)
        return Page(events, events[-1].seq if len(events) == limit else None)

    async def verify(
        self, actor: Actor, purpose: Purpose, *, request_id: str | None
    ) -> VerifyReport:
        await self._permit(
            actor, Operation.AUDIT_READ, purpose, Action.AUDIT_VERIFIED, request_id=request_id
        )
        return await self.log.verify(trusted=self.trusted, witness=self.witness)

    async def export(
        self,
        actor: Actor,
        purpose: Purpose,
        fmt: ExportFormat,
        filters: QueryFilter,
        *,
        request_id: str | None,
    ) -> AsyncIterator[str]:
        """Recorded first; the lines are produced lazily while the response streams."""
        await self._permit(
            actor, Operation.AUDIT_READ, purpose, Action.AUDIT_EXPORTED, request_id=request_id
        )
        return export_lines(self.log.iter_events(filters), fmt)

    # -- owners -----------------------------------------------------------------------------

    async def history(
        self,
        actor: Actor,
        account_id: str,
        *,
        limit: int,
        before_seq: int | None,
        request_id: str | None,
    ) -> Page:
        """Every access to the account by anyone, newest first, except events under legal hold."""
        await self._permit(
            actor, Operation.HISTORY_READ, Purpose.USER_FEATURE, Action.ACCOUNT_HISTORY_READ,
            account_id=account_id, request_id=request_id,
        )  # fmt: skip
        shown: list[StoredEvent] = []
        cursor = before_seq
        while len(shown) < limit:
            page = await self.log.query(
                QueryFilter(account_id=account_id), limit=HISTORY_PAGE, before_seq=cursor,
                newest_first=True,
            )  # fmt: skip
            shown.extend(s for s in page if not s.event.legal_hold)
            if len(page) < HISTORY_PAGE:
                cursor = None
                break
            cursor = page[-1].seq
        if len(shown) > limit:
            shown = shown[:limit]
            cursor = shown[-1].seq
        return Page(shown, cursor)


def _range(after_seq: int | None, limit: int) -> tuple[ResourceRef, ...]:
    return (ResourceRef(ResourceKind.AUDIT_RANGE, f"after-{after_seq or 0}.limit-{limit}"),)


def event_json(stored: StoredEvent, *, for_owner: bool = False) -> dict[str, Any]:
    """An event as the API shows it (identifiers only, like the event itself)."""
    e = stored.event
    body: dict[str, Any] = {
        "seq": stored.seq,
        "event_id": e.event_id,
        "time": e.time.isoformat(),
        "actor": {"kind": e.actor.kind.value, "id": e.actor.id},
        "account_id": e.account_id,
        "action": e.action.value,
        "phase": e.phase.value,
        "purpose": None if e.purpose is None else e.purpose.value,
        "basis": None if e.basis is None else {"kind": e.basis.kind.value, "id": e.basis.id},
        "decision": e.decision.value,
        "outcome": e.outcome.value,
        "reasons": list(e.reasons),
        "resources": [{"kind": r.kind.value, "id": r.id} for r in e.resources],
        "access_id": e.access_id,
        "error_code": e.error_code,
    }
    if not for_owner:
        body.update(
            severity=e.severity.value,
            request_id=e.request_id,
            legal_hold=e.legal_hold,
            prev_hash=stored.prev_hash,
            hash=stored.hash,
        )
    return body
