"""Consents and access requests on SQLite and PostgreSQL: lifecycle, authorization, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from audit.event import Actor, Basis, ResourceRef
from audit.vocab import Action, ActorKind, BasisKind, Decision, Outcome, Purpose, ResourceKind
from connector.db import create_engine, migrate
from connector.policy import (
    AccessDenied,
    ApprovalStatus,
    AuditUnavailableError,
    GranteeKind,
    PolicyInputError,
    Reason,
    plans,
)
from connector.policy.access_requests import AccessRequests
from connector.policy.aggregates import SqlUsageCounter
from connector.policy.authority import Authority
from connector.policy.consents import Consents
from connector.policy.recorder import Recorder
from connector.policy.records import StoredBasisFacts
from connector.testing.memory import StaticAccountOwners
from tests.conftest import Clock
from tests.policy.conftest import ACCOUNT, OWNER, T0, RecordingSink

USER = Actor(ActorKind.USER, OWNER)
OP1 = Actor(ActorKind.OPERATOR, "op1")
OP2 = Actor(ActorKind.OPERATOR, "op2")


@dataclass
class Stored:
    """The policy layer's stored bases over one database, as the service wires them."""

    consents: Consents
    requests: AccessRequests
    facts: StoredBasisFacts


@pytest.fixture
async def store(
    db_url: str, sink: RecordingSink, owners: StaticAccountOwners, clock: Clock
) -> AsyncIterator[Stored]:
    engine = create_engine(db_url)
    await migrate(engine)
    authority = Authority(Recorder(sink, clock), owners, clock)
    yield Stored(
        Consents(engine, authority, clock), AccessRequests(engine, authority, clock),
        StoredBasisFacts(engine),
    )  # fmt: skip
    await engine.dispose()


async def test_consent_lifecycle(store: Stored, sink: RecordingSink, clock: Clock) -> None:
    """Owner grants (7-day default), sees, and revokes a consent; each change is audited."""
    granted = await store.consents.grant_consent(
        USER, ACCOUNT, ["m2", "m1"], GranteeKind.OPERATOR, "op1"
    )
    assert granted.message_ids == {"m1", "m2"}
    assert granted.expires_at == T0 + timedelta(days=7)
    assert await store.facts.consent(granted.id) == granted
    assert [c.id for c in await store.consents.list_consents(USER, ACCOUNT)] == [granted.id]
    clock.advance(timedelta(hours=1))
    revoked = await store.consents.revoke_consent(USER, granted.id)
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert [(e.action, e.decision, e.outcome) for e in sink.events] == [
        (Action.CONSENT_GRANTED, Decision.ALLOW, Outcome.OK),
        (Action.CONSENT_LISTED, Decision.ALLOW, Outcome.OK),  # the owner's look is recorded too
        (Action.CONSENT_REVOKED, Decision.ALLOW, Outcome.OK),
    ]
    assert sink.events[0].resources == (
        ResourceRef(ResourceKind.CONSENT, granted.id),
        ResourceRef(ResourceKind.MESSAGE, "m1"),
        ResourceRef(ResourceKind.MESSAGE, "m2"),
    )


async def test_only_the_owner_grants_and_limits_hold(store: Stored, sink: RecordingSink) -> None:
    """A non-owner's consent is refused and audited; >30 days or no ids is rejected."""
    with pytest.raises(AccessDenied) as denied:
        await store.consents.grant_consent(
            Actor(ActorKind.USER, "user2"), ACCOUNT, ["m1"], GranteeKind.OPERATOR, "op1"
        )
    assert denied.value.reasons == (Reason.ACTOR_NOT_OWNER,)
    assert [(e.action, e.decision) for e in sink.events] == [
        (Action.CONSENT_GRANTED, Decision.DENY)
    ]
    with pytest.raises(PolicyInputError):
        await store.consents.grant_consent(
            USER, ACCOUNT, ["m1"], GranteeKind.SUPPORT_CASE, "case7", ttl=timedelta(days=31)
        )
    with pytest.raises(PolicyInputError):
        await store.consents.grant_consent(USER, ACCOUNT, [], GranteeKind.OPERATOR, "op1")


async def test_consent_not_kept_when_audit_is_down(store: Stored, sink: RecordingSink) -> None:
    """If the audit log refuses the event, the consent is rolled back."""
    sink.fail = True
    with pytest.raises(AuditUnavailableError):
        await store.consents.grant_consent(USER, ACCOUNT, ["m1"], GranteeKind.OPERATOR, "op1")
    sink.fail = False
    assert await store.consents.list_consents(USER, ACCOUNT) == []


async def test_access_request_needs_a_second_operator(
    store: Stored, sink: RecordingSink, clock: Clock
) -> None:
    """op1 asks, cannot approve his own request, op2 approves: expiry = now + duration."""
    request = await store.requests.request_access(
        OP1, ACCOUNT, purpose=Purpose.LEGAL, case_reference="LEGAL-42 subpoena",
        reason="court order for messages", duration=timedelta(days=2),
        message_ids=["m1"], legal_hold=True,
    )  # fmt: skip
    assert request.status is ApprovalStatus.PENDING
    with pytest.raises(AccessDenied) as denied:
        await store.requests.approve(OP1, request.id)
    assert Reason.APPROVAL_BY_REQUESTER in denied.value.reasons
    clock.advance(timedelta(hours=1))
    approved = await store.requests.approve(OP2, request.id)
    assert approved.status is ApprovalStatus.APPROVED
    assert approved.decided_by == "op2"
    assert approved.expires_at == T0 + timedelta(hours=1, days=2)
    with pytest.raises(AccessDenied):
        await store.requests.dismiss(OP2, request.id)  # no longer pending
    record = await store.requests.get_access_request(request.id)
    assert record.case_reference == "LEGAL-42 subpoena"
    basis = Basis(BasisKind.ACCESS_REQUEST, request.id)
    assert [(e.action, e.decision, e.legal_hold) for e in sink.events] == [
        (Action.ACCESS_REQUEST_CREATED, Decision.ALLOW, True),
        (Action.ACCESS_REQUEST_APPROVED, Decision.DENY, True),
        (Action.ACCESS_REQUEST_APPROVED, Decision.ALLOW, True),
        (Action.ACCESS_REQUEST_DISMISSED, Decision.DENY, True),
    ]
    assert sink.events[2].basis == basis
    # Free text never reaches the audit log.
    assert "subpoena" not in repr(sink.events)
    assert "court" not in repr(sink.events)


async def test_stale_requests_count_as_dismissed(store: Stored, clock: Clock) -> None:
    """A request pending more than 14 days can no longer be approved."""
    request = await store.requests.request_access(
        OP1, ACCOUNT, purpose=Purpose.SECURITY, case_reference="SEC-1", reason="abuse report",
        duration=timedelta(days=1), time_from=datetime(2025, 1, 1, tzinfo=UTC),
        time_to=datetime(2025, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    clock.advance(timedelta(days=15))
    with pytest.raises(AccessDenied) as denied:
        await store.requests.approve(OP2, request.id)
    assert denied.value.reasons == (Reason.APPROVAL_STALE,)
    stale = await store.requests.list_access_requests(status=ApprovalStatus.STALE)
    assert [r.fact.id for r in stale] == [request.id]


async def test_request_validation(store: Stored) -> None:
    """Missing reason, half a time range, or no scope at all are rejected before storing."""
    base = {"purpose": Purpose.SECURITY, "duration": timedelta(days=1)}
    with pytest.raises(PolicyInputError):
        await store.requests.request_access(
            OP1, ACCOUNT, case_reference="C", reason=" ", message_ids=["m1"], **base
        )  # type: ignore[arg-type]
    with pytest.raises(PolicyInputError):
        await store.requests.request_access(
            OP1, ACCOUNT, case_reference="C", reason="r", time_from=T0, **base
        )  # type: ignore[arg-type]
    with pytest.raises(PolicyInputError):
        await store.requests.request_access(OP1, ACCOUNT, case_reference="C", reason="r", **base)  # type: ignore[arg-type]


async def test_usage_counter_upserts(db_url: str) -> None:
    """The usage counter adds accesses and errors per account/day/operation on both engines."""
    engine = create_engine(db_url)
    await migrate(engine)
    try:
        counter = SqlUsageCounter(engine)
        day = T0.date()
        await counter.increment("a", day, "content.read", error=False)
        await counter.increment("a", day, "content.read", error=True)
        await counter.increment("b", day, "message.send", error=False)
        rows = await counter.counts(day, day)
        assert sorted((r.account_id, r.operation, r.count, r.error_count) for r in rows) == [
            ("a", "content.read", 2, 1),
            ("b", "message.send", 1, 0),
        ]
    finally:
        await engine.dispose()


async def test_gate_uses_stored_consent_until_revoked(
    store: Stored, sink: RecordingSink, owners: StaticAccountOwners, clock: Clock
) -> None:
    """Consent stored in the database opens one message to op1 through the gate, until revoked."""
    from connector.policy.access import AccessContext
    from connector.policy.gate import Gate
    from connector.testing.mailbox import FakeMailbox
    from connector.testing.memory import MemoryUsageCounter

    mailbox = FakeMailbox()
    mailbox.add_message(ACCOUNT, "m1")
    gate = Gate(
        mailbox, Recorder(sink, clock), owners, store.facts, MemoryUsageCounter(),
        hash_key=b"k", clock=clock,
    )  # fmt: skip
    granted = await store.consents.grant_consent(USER, ACCOUNT, ["m1"], GranteeKind.OPERATOR, "op1")
    ctx = AccessContext(OP1, Purpose.CONSENTED_SUPPORT)
    basis = Basis(BasisKind.CONSENT, granted.id)
    assert (await gate.run(ctx, plans.message(ACCOUNT, "m1", "full", basis)))["id"] == "m1"
    await store.consents.revoke_consent(USER, granted.id)
    with pytest.raises(AccessDenied) as denied:
        await gate.run(ctx, plans.message(ACCOUNT, "m1", "full", basis))
    assert denied.value.reasons == (Reason.CONSENT_REVOKED,)
    assert len(mailbox.calls) == 1
