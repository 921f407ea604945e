"""Stored consents and access requests as the policy's facts, and the gate's `BasisFacts`.

Free text (case references, written reasons) stays in the rows; facts and audit events carry
ids and flags only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from audit.event import ResourceRef
from audit.vocab import Purpose, ResourceKind
from connector.clock import Clock, system_clock
from connector.db import aware, session_factory
from connector.errors import PolicyInputError
from connector.policy.facts import ApprovalFact, ApprovalStatus, ConsentFact, GranteeKind
from connector.policy.models import AccessRequestRow, ConsentRow

if TYPE_CHECKING:
    from connector.policy.authority import Authority
    from connector.policy.recorder import Change

MAX_MESSAGE_IDS = 500  # an audit event holds at most 1000 resources


def _maybe(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def check_ids(message_ids: Iterable[str]) -> list[str]:
    """Sorted, unique, at most MAX_MESSAGE_IDS, each an identifier the audit log can record."""
    ids = sorted(set(message_ids))
    if len(ids) > MAX_MESSAGE_IDS:
        raise PolicyInputError(f"at most {MAX_MESSAGE_IDS} message ids per consent or request")
    for message_id in ids:
        ResourceRef(ResourceKind.MESSAGE, message_id)  # the audit event's own identifier rule
    return ids


def resources(kind: ResourceKind, record_id: str, ids: Iterable[str]) -> tuple[ResourceRef, ...]:
    """The record and the messages it names, as the audit event lists them."""
    return (ResourceRef(kind, record_id), *(ResourceRef(ResourceKind.MESSAGE, i) for i in ids))


def consent_fact(row: ConsentRow) -> ConsentFact:
    return ConsentFact(
        id=row.id,
        account_id=row.account_id,
        granted_by=row.granted_by,
        grantee_kind=GranteeKind(row.grantee_kind),
        grantee_id=row.grantee_id,
        message_ids=frozenset(row.message_ids),
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at),
        revoked_at=_maybe(row.revoked_at),
    )


def approval_fact(row: AccessRequestRow) -> ApprovalFact:
    return ApprovalFact(
        id=row.id,
        account_id=row.account_id,
        requester_id=row.requester_id,
        purpose=Purpose(row.purpose),
        status=ApprovalStatus(row.status),
        created_at=aware(row.created_at),
        message_ids=frozenset(row.message_ids),
        time_from=_maybe(row.time_from),
        time_to=_maybe(row.time_to),
        has_case_reference=bool(row.case_reference.strip()),
        has_reason=bool(row.reason.strip()),
        decided_by=row.decided_by,
        expires_at=_maybe(row.expires_at),
        legal_hold=row.legal_hold,
    )


@dataclass(frozen=True, slots=True)
class AccessRequestRecord:
    """An access request with its free text, for the operators who work the queue."""

    fact: ApprovalFact
    case_reference: str
    reason: str
    duration: timedelta
    decided_at: datetime | None


def request_record(row: AccessRequestRow) -> AccessRequestRecord:
    return AccessRequestRecord(
        fact=approval_fact(row),
        case_reference=row.case_reference,
        reason=row.reason,
        duration=timedelta(seconds=row.duration_seconds),
        decided_at=_maybe(row.decided_at),
    )


class PolicyService:
    """A service over the policy tables whose every change is decided and recorded by the
    authority (consents, access requests)."""

    def __init__(
        self, engine: AsyncEngine, authority: Authority, clock: Clock = system_clock
    ) -> None:
        self._sessions = session_factory(engine)
        self._authority = authority
        self._clock = clock

    async def _insert(self, row: ConsentRow | AccessRequestRow, change: Change) -> None:
        """Authorize `change`, then insert `row` and record the change in one transaction: no
        row is kept without its audit event (a refusal is recorded by `authorize`)."""
        await self._authority.authorize(change)
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            await self._authority.record(change)


class StoredBasisFacts:
    """The gate's `BasisFacts` over the policy tables (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)

    async def consent(self, consent_id: str) -> ConsentFact | None:
        async with self._sessions() as session:
            row = await session.get(ConsentRow, consent_id)
            return None if row is None else consent_fact(row)

    async def approval(self, request_id: str) -> ApprovalFact | None:
        async with self._sessions() as session:
            row = await session.get(AccessRequestRow, request_id)
            return None if row is None else approval_fact(row)
