"""Operators' access requests: a case reference, a written reason, a second person's decision.

Case references and reasons are free text, so they live only in `policy_access_request`; audit
events carry the request id. Every change is decided by the policy and recorded before commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlmodel import col, select

from audit.event import Actor, Basis
from audit.vocab import Action, BasisKind, Purpose, ResourceKind
from connector.errors import PolicyInputError, PolicyRecordNotFoundError
from connector.policy.facts import APPROVAL_MAX_DURATION, ApprovalFact, ApprovalStatus
from connector.policy.models import AccessRequestRow
from connector.policy.recorder import Change
from connector.policy.records import (
    AccessRequestRecord,
    PolicyService,
    approval_fact,
    check_ids,
    request_record,
    resources,
)
from connector.policy.vocab import Operation


def _check_request(
    ids: list[str],
    *,
    case_reference: str,
    reason: str,
    duration: timedelta,
    time_from: datetime | None,
    time_to: datetime | None,
) -> None:
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


class AccessRequests(PolicyService):
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
        ids = check_ids(message_ids)
        _check_request(
            ids, case_reference=case_reference, reason=reason, duration=duration,
            time_from=time_from, time_to=time_to,
        )  # fmt: skip
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
            created_at=self._clock(),
        )
        change = Change(
            actor, Operation.ACCESS_REQUEST_CREATE, Action.ACCESS_REQUEST_CREATED, purpose,
            account_id=account_id, resources=resources(ResourceKind.ACCESS_REQUEST, row.id, ids),
            request_id=request_id, legal_hold=legal_hold,
        )  # fmt: skip
        await self._insert(row, change)
        return approval_fact(row)

    async def approve(
        self, actor: Actor, access_request_id: str, *, request_id: str | None = None
    ) -> ApprovalFact:
        """A different operator approves; access is open until now + the requested duration."""
        return await self._decide(actor, access_request_id, True, request_id)

    async def dismiss(
        self, actor: Actor, access_request_id: str, *, request_id: str | None = None
    ) -> ApprovalFact:
        """A different operator turns the request down."""
        return await self._decide(actor, access_request_id, False, request_id)

    async def get_access_request(self, access_request_id: str) -> AccessRequestRecord:
        async with self._sessions() as session:
            row = await session.get(AccessRequestRow, access_request_id)
            if row is None:
                raise PolicyRecordNotFoundError("access request", access_request_id)
            return request_record(row)

    async def list_access_requests(
        self, *, status: ApprovalStatus | None = None
    ) -> list[AccessRequestRecord]:
        """The operators' queue, newest first; `status` filters on the effective status."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(AccessRequestRow).order_by(col(AccessRequestRow.created_at).desc())
            )
            records = [request_record(row) for row in rows.scalars()]
        if status is None:
            return records
        now = self._clock()
        return [r for r in records if r.fact.effective_status(now) is status]

    async def _decide(
        self, actor: Actor, access_request_id: str, approve: bool, request_id: str | None
    ) -> ApprovalFact:
        action = Action.ACCESS_REQUEST_APPROVED if approve else Action.ACCESS_REQUEST_DISMISSED
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await session.get(AccessRequestRow, access_request_id, with_for_update=True)
            if row is None:
                raise PolicyRecordNotFoundError("access request", access_request_id)
            fact = approval_fact(row)
            change = Change(
                actor, Operation.ACCESS_REQUEST_DECIDE, action, fact.purpose,
                account_id=row.account_id,
                resources=resources(ResourceKind.ACCESS_REQUEST, row.id, row.message_ids),
                basis=Basis(BasisKind.ACCESS_REQUEST, access_request_id), request_id=request_id,
                legal_hold=row.legal_hold,
            )  # fmt: skip
            await self._authority.authorize(change, approval=fact)
            row.status = (ApprovalStatus.APPROVED if approve else ApprovalStatus.DISMISSED).value
            row.decided_by = actor.id
            row.decided_at = now
            if approve:
                row.expires_at = now + timedelta(seconds=row.duration_seconds)
            session.add(row)
            await session.flush()
            await self._authority.record(change)
            return approval_fact(row)
