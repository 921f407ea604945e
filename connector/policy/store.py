"""Consents and access requests: persisted with SQLModel, authorized by `decide()`, audited.

Each change is written inside a transaction, recorded through the one audit path, and only then
committed: if the audit log refuses, the change is rolled back (no unrecorded consent can exist).
Refused attempts are recorded as denials. Case references and written reasons are free text, so
they live only in `policy_access_request`; audit events carry the request id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col, select

from audit.event import Actor, AuditEvent, Basis, ResourceRef
from audit.sink import AuditSink
from audit.vocab import Action, BasisKind, Decision, Outcome, Purpose, ResourceKind
from connector.db import session_factory
from connector.errors import AccessDenied, PolicyInputError, PolicyRecordNotFoundError
from connector.policy.facts import (
    APPROVAL_MAX_DURATION,
    CONSENT_DEFAULT_TTL,
    CONSENT_MAX_TTL,
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRequest,
)
from connector.policy.models import AccessRequestRow, ConsentRow
from connector.policy.ports import AccountOwners, record
from connector.policy.rules import Verdict, decide, severity
from connector.policy.vocab import Operation

MAX_MESSAGE_IDS = 500  # an audit event holds at most 1000 resources


def utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here was UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    result = _utc(value)
    assert result is not None
    return result


def _check_ids(message_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(message_ids))
    if len(ids) > MAX_MESSAGE_IDS:
        raise PolicyInputError(f"at most {MAX_MESSAGE_IDS} message ids per consent or request")
    for message_id in ids:
        # Validate with the audit event's own rule, so every id can be recorded later.
        ResourceRef(ResourceKind.MESSAGE, message_id)
    return ids


def consent_fact(row: ConsentRow) -> ConsentFact:
    return ConsentFact(
        id=row.id,
        account_id=row.account_id,
        granted_by=row.granted_by,
        grantee_kind=GranteeKind(row.grantee_kind),
        grantee_id=row.grantee_id,
        message_ids=frozenset(row.message_ids),
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
        revoked_at=_utc(row.revoked_at),
    )


def approval_fact(row: AccessRequestRow) -> ApprovalFact:
    return ApprovalFact(
        id=row.id,
        account_id=row.account_id,
        requester_id=row.requester_id,
        purpose=Purpose(row.purpose),
        status=ApprovalStatus(row.status),
        created_at=_aware(row.created_at),
        message_ids=frozenset(row.message_ids),
        time_from=_utc(row.time_from),
        time_to=_utc(row.time_to),
        has_case_reference=bool(row.case_reference.strip()),
        has_reason=bool(row.reason.strip()),
        decided_by=row.decided_by,
        expires_at=_utc(row.expires_at),
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


def _record(row: AccessRequestRow) -> AccessRequestRecord:
    return AccessRequestRecord(
        fact=approval_fact(row),
        case_reference=row.case_reference,
        reason=row.reason,
        duration=timedelta(seconds=row.duration_seconds),
        decided_at=_utc(row.decided_at),
    )


class PolicyStore:
    """Consents and access requests on SQLite or PostgreSQL; also the gate's `BasisFacts`."""

    def __init__(
        self,
        engine: AsyncEngine,
        audit: AuditSink,
        owners: AccountOwners,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory(engine)
        self._audit = audit
        self._owners = owners
        self._clock = clock

    # -- BasisFacts -------------------------------------------------------------------------

    async def consent(self, consent_id: str) -> ConsentFact | None:
        async with self._sessions() as session:
            row = await session.get(ConsentRow, consent_id)
            return None if row is None else consent_fact(row)

    async def approval(self, request_id: str) -> ApprovalFact | None:
        async with self._sessions() as session:
            row = await session.get(AccessRequestRow, request_id)
            return None if row is None else approval_fact(row)

    # -- consents ---------------------------------------------------------------------------

    async def grant_consent(
        self,
        actor: Actor,
        account_id: str,
        message_ids: Iterable[str],
        grantee_kind: GranteeKind,
        grantee_id: str,
        *,
        ttl: timedelta = CONSENT_DEFAULT_TTL,
        request_id: str | None = None,
    ) -> ConsentFact:
        """The owner lets one operator (or one support case) view exactly these messages."""
        ids = _check_ids(message_ids)
        if not ids:
            raise PolicyInputError("a consent names at least one message id")
        if not timedelta(0) < ttl <= CONSENT_MAX_TTL:
            raise PolicyInputError("a consent lasts more than zero and at most 30 days")
        Actor(actor.kind, grantee_id)  # same identifier rule as everywhere in the audit log
        now = self._clock()
        row = ConsentRow(
            id=uuid.uuid4().hex,
            account_id=account_id,
            granted_by=actor.id,
            grantee_kind=GranteeKind(grantee_kind).value,
            grantee_id=grantee_id,
            message_ids=ids,
            created_at=now,
            expires_at=now + ttl,
        )
        resources = self._resources(ResourceKind.CONSENT, row.id, ids)
        await self._authorize(
            actor, Operation.CONSENT_GRANT, Purpose.USER_FEATURE, account_id,
            now=now, action=Action.CONSENT_GRANTED, resources=resources, request_id=request_id,
        )  # fmt: skip
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            await self._event(
                actor, Action.CONSENT_GRANTED, Purpose.USER_FEATURE, account_id, resources,
                request_id=request_id,
            )  # fmt: skip
        return consent_fact(row)

    async def revoke_consent(
        self, actor: Actor, consent_id: str, *, request_id: str | None = None
    ) -> ConsentFact:
        """The owner withdraws a consent; accesses under it are refused from now on."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await self._consent_row(session, consent_id)
            resources = self._resources(ResourceKind.CONSENT, row.id, row.message_ids)
            await self._authorize(
                actor, Operation.CONSENT_REVOKE, Purpose.USER_FEATURE, row.account_id,
                now=now, action=Action.CONSENT_REVOKED, resources=resources,
                request_id=request_id,
            )  # fmt: skip
            if row.revoked_at is None:
                row.revoked_at = now
                session.add(row)
                await session.flush()
            await self._event(
                actor, Action.CONSENT_REVOKED, Purpose.USER_FEATURE, row.account_id, resources,
                request_id=request_id,
            )  # fmt: skip
            return consent_fact(row)

    async def list_consents(self, actor: Actor, account_id: str) -> list[ConsentFact]:
        """Every consent on the account, newest first; only its owner may look."""
        owner = await self._owners.owner_of(account_id)
        verdict = decide(
            PolicyRequest(
                actor, Operation.HISTORY_READ, Purpose.USER_FEATURE, self._clock(),
                account_id=account_id, account_owner=owner,
            )
        )  # fmt: skip
        if not verdict.allowed:
            raise AccessDenied(verdict)  # type: ignore[arg-type]
        async with self._sessions() as session:
            rows = await session.execute(
                select(ConsentRow)
                .where(ConsentRow.account_id == account_id)
                .order_by(col(ConsentRow.created_at).desc())
            )
            return [consent_fact(row) for row in rows.scalars()]

    # -- access requests --------------------------------------------------------------------

    async def request_access(
        self,
        actor: Actor,
        account_id: str,
        *,
        purpose: Purpose,
        case_reference: str,
        reason: str,
        duration: timedelta,
        message_ids: Iterable[str] = (),
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        legal_hold: bool = False,
        request_id: str | None = None,
    ) -> ApprovalFact:
        """An operator asks, with a case reference and a written reason, for a second approval."""
        ids = _check_ids(message_ids)
        if not case_reference.strip() or not reason.strip():
            raise PolicyInputError("an access request needs a case reference and a written reason")
        if (time_from is None) != (time_to is None):
            raise PolicyInputError("a time range needs both its start and its end")
        if time_from is not None and time_to is not None and not time_from < time_to:
            raise PolicyInputError("a time range must start before it ends")
        if not ids and time_from is None:
            raise PolicyInputError("an access request names message ids or a time range")
        if not timedelta(0) < duration <= APPROVAL_MAX_DURATION:
            raise PolicyInputError("the requested duration is more than zero and at most 30 days")
        now = self._clock()
        row = AccessRequestRow(
            id=uuid.uuid4().hex,
            account_id=account_id,
            requester_id=actor.id,
            purpose=Purpose(purpose).value,
            case_reference=case_reference,
            reason=reason,
            message_ids=ids,
            time_from=time_from,
            time_to=time_to,
            duration_seconds=int(duration.total_seconds()),
            legal_hold=legal_hold,
            status=ApprovalStatus.PENDING.value,
            created_at=now,
        )
        resources = self._resources(ResourceKind.ACCESS_REQUEST, row.id, ids)
        await self._authorize(
            actor, Operation.ACCESS_REQUEST_CREATE, purpose, account_id,
            now=now, action=Action.ACCESS_REQUEST_CREATED, resources=resources,
            request_id=request_id, legal_hold=legal_hold,
        )  # fmt: skip
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            await self._event(
                actor, Action.ACCESS_REQUEST_CREATED, purpose, account_id, resources,
                request_id=request_id, legal_hold=legal_hold,
            )  # fmt: skip
        return approval_fact(row)

    async def approve(
        self, actor: Actor, access_request_id: str, *, request_id: str | None = None
    ) -> ApprovalFact:
        """A different operator approves; access is open until now + the requested duration."""
        return await self._decide_request(actor, access_request_id, True, request_id)

    async def dismiss(
        self, actor: Actor, access_request_id: str, *, request_id: str | None = None
    ) -> ApprovalFact:
        """A different operator turns the request down."""
        return await self._decide_request(actor, access_request_id, False, request_id)

    async def get_access_request(self, access_request_id: str) -> AccessRequestRecord:
        async with self._sessions() as session:
            row = await session.get(AccessRequestRow, access_request_id)
            if row is None:
                raise PolicyRecordNotFoundError("access request", access_request_id)
            return _record(row)

    async def list_access_requests(
        self, *, status: ApprovalStatus | None = None
    ) -> list[AccessRequestRecord]:
        """The operators' queue, newest first; `status` filters on the effective status."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(AccessRequestRow).order_by(col(AccessRequestRow.created_at).desc())
            )
            records = [_record(row) for row in rows.scalars()]
        if status is None:
            return records
        now = self._clock()
        return [r for r in records if r.fact.effective_status(now) is status]

    async def _decide_request(
        self, actor: Actor, access_request_id: str, approve: bool, request_id: str | None
    ) -> ApprovalFact:
        action = Action.ACCESS_REQUEST_APPROVED if approve else Action.ACCESS_REQUEST_DISMISSED
        now = self._clock()
        basis = Basis(BasisKind.ACCESS_REQUEST, access_request_id)
        async with self._sessions() as session, session.begin():
            row = await session.get(AccessRequestRow, access_request_id, with_for_update=True)
            if row is None:
                raise PolicyRecordNotFoundError("access request", access_request_id)
            fact = approval_fact(row)
            resources = self._resources(ResourceKind.ACCESS_REQUEST, row.id, row.message_ids)
            await self._authorize(
                actor, Operation.ACCESS_REQUEST_DECIDE, fact.purpose, row.account_id,
                now=now, action=action, resources=resources, request_id=request_id,
                basis=basis, approval=fact, legal_hold=row.legal_hold,
            )  # fmt: skip
            row.status = (ApprovalStatus.APPROVED if approve else ApprovalStatus.DISMISSED).value
            row.decided_by = actor.id
            row.decided_at = now
            if approve:
                row.expires_at = now + timedelta(seconds=row.duration_seconds)
            session.add(row)
            await session.flush()
            await self._event(
                actor, action, fact.purpose, row.account_id, resources, request_id=request_id,
                basis=basis, legal_hold=row.legal_hold,
            )  # fmt: skip
            return approval_fact(row)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def _consent_row(session: AsyncSession, consent_id: str) -> ConsentRow:
        row = await session.get(ConsentRow, consent_id, with_for_update=True)
        if row is None:
            raise PolicyRecordNotFoundError("consent", consent_id)
        return row

    @staticmethod
    def _resources(
        kind: ResourceKind, record_id: str, ids: Iterable[str]
    ) -> tuple[ResourceRef, ...]:
        return (ResourceRef(kind, record_id), *(ResourceRef(ResourceKind.MESSAGE, i) for i in ids))

    async def _authorize(
        self,
        actor: Actor,
        operation: Operation,
        purpose: Purpose,
        account_id: str,
        *,
        now: datetime,
        action: Action,
        resources: tuple[ResourceRef, ...],
        request_id: str | None,
        basis: Basis | None = None,
        approval: ApprovalFact | None = None,
        legal_hold: bool = False,
    ) -> None:
        owner = await self._owners.owner_of(account_id)
        verdict: Verdict = decide(
            PolicyRequest(
                actor, operation, purpose, now, account_id=account_id, account_owner=owner,
                basis=basis, approval=approval,
            )
        )  # fmt: skip
        if verdict.allowed:
            return
        await record(
            self._audit,
            AuditEvent(
                actor=actor, action=action, decision=Decision.DENY, outcome=Outcome.DENIED,
                account_id=account_id, purpose=purpose, basis=basis, resources=resources,
                reasons=tuple(verdict.reasons), severity=severity(verdict),
                request_id=request_id, legal_hold=legal_hold,
            ),
        )  # fmt: skip
        raise AccessDenied(verdict)  # type: ignore[arg-type]

    async def _event(
        self,
        actor: Actor,
        action: Action,
        purpose: Purpose,
        account_id: str,
        resources: tuple[ResourceRef, ...],
        *,
        request_id: str | None,
        basis: Basis | None = None,
        legal_hold: bool = False,
    ) -> None:
        await record(
            self._audit,
            AuditEvent(
                actor=actor, action=action, decision=Decision.ALLOW, outcome=Outcome.OK,
                account_id=account_id, purpose=purpose, basis=basis, resources=resources,
                request_id=request_id, legal_hold=legal_hold, time=self._clock(),
            ),
        )  # fmt: skip
