"""The owner's consents: a named grantee may view exactly these messages, for a while.

Each change is decided by the policy (`Authority.authorize`: a refusal is recorded and raised),
written inside a transaction, recorded through the one recorder, and only then committed: if the
audit log refuses, the change is rolled back, so no unrecorded consent can exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import col, select

from audit.event import Actor
from audit.vocab import Action, Purpose, ResourceKind
from connector.errors import PolicyInputError, PolicyRecordNotFoundError
from connector.policy.facts import CONSENT_DEFAULT_TTL, CONSENT_MAX_TTL, ConsentFact, GranteeKind
from connector.policy.models import ConsentRow
from connector.policy.recorder import Change
from connector.policy.records import PolicyService, check_ids, consent_fact, resources
from connector.policy.vocab import Operation


class Consents(PolicyService):
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
        ids = check_ids(message_ids)
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
        change = Change(
            actor, Operation.CONSENT_GRANT, Action.CONSENT_GRANTED, account_id=account_id,
            resources=resources(ResourceKind.CONSENT, row.id, ids), request_id=request_id,
        )  # fmt: skip
        await self._insert(row, change)
        return consent_fact(row)

    async def revoke_consent(
        self, actor: Actor, consent_id: str, *, request_id: str | None = None
    ) -> ConsentFact:
        """The owner withdraws a consent; accesses under it are refused from now on."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            row = await session.get(ConsentRow, consent_id, with_for_update=True)
            if row is None:
                raise PolicyRecordNotFoundError("consent", consent_id)
            change = Change(
                actor, Operation.CONSENT_REVOKE, Action.CONSENT_REVOKED,
                account_id=row.account_id, request_id=request_id,
                resources=resources(ResourceKind.CONSENT, row.id, row.message_ids),
            )  # fmt: skip
            await self._authority.authorize(change)
            if row.revoked_at is None:
                row.revoked_at = now
                session.add(row)
                await session.flush()
            await self._authority.record(change)
            return consent_fact(row)

    async def list_consents(
        self, actor: Actor, account_id: str, *, request_id: str | None = None
    ) -> list[ConsentFact]:
        """Every consent on the account, newest first; only its owner may look (recorded)."""
        change = Change(
            actor, Operation.HISTORY_READ, Action.CONSENT_LISTED, Purpose.USER_FEATURE,
            account_id=account_id, request_id=request_id,
        )  # fmt: skip
        await self._authority.permit(change)
        async with self._sessions() as session:
            rows = await session.execute(
                select(ConsentRow)
                .where(ConsentRow.account_id == account_id)
                .order_by(col(ConsentRow.created_at).desc())
            )
            return [consent_fact(row) for row in rows.scalars()]
