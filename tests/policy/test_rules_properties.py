"""Property-based checks: deny by default; consents and approvals hold their limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.event import Actor, Basis
from audit.vocab import ActorKind, BasisKind, Purpose
from connector.policy import (
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    Operation,
    PolicyRequest,
    Reason,
    decide,
)
from tests.policy.test_rules_table import ALLOWED

NOW = datetime(2025, 3, 1, tzinfo=UTC)
ids = st.sampled_from(["m1", "m2", "m3", "m4"])
people = st.sampled_from(["user1", "user2", "op1", "op2", "sync", "rev1"])
accounts = st.sampled_from(["acct1", "acct2"])
offsets = st.integers(min_value=-40, max_value=40).map(lambda d: NOW + timedelta(days=d))
maybe = st.none() | offsets

consents = st.builds(
    ConsentFact,
    id=st.just("c1"),
    account_id=accounts,
    granted_by=people,
    grantee_kind=st.sampled_from(GranteeKind),
    grantee_id=people | st.just("case7"),
    message_ids=st.frozensets(ids, max_size=3),
    created_at=offsets,
    expires_at=offsets,
    revoked_at=maybe,
)
approvals = st.builds(
    ApprovalFact,
    id=st.just("r1"),
    account_id=accounts,
    requester_id=people,
    purpose=st.sampled_from(Purpose),
    status=st.sampled_from(ApprovalStatus),
    created_at=offsets,
    message_ids=st.frozensets(ids, max_size=3),
    time_from=maybe,
    time_to=maybe,
    has_case_reference=st.booleans(),
    has_reason=st.booleans(),
    decided_by=st.none() | people,
    expires_at=maybe,
    legal_hold=st.booleans(),
)


@st.composite
def requests(draw: st.DrawFn) -> PolicyRequest:
    basis_kind = draw(st.sampled_from([None, BasisKind.CONSENT, BasisKind.ACCESS_REQUEST]))
    return PolicyRequest(
        actor=Actor(draw(st.sampled_from(ActorKind)), draw(people)),
        operation=draw(st.sampled_from(Operation)),
        purpose=draw(st.sampled_from(Purpose)),
        now=NOW,
        account_id=draw(st.none() | accounts),
        account_owner=draw(st.none() | people),
        message_ids=draw(st.frozensets(ids, max_size=3)),
        mailbox_wide=draw(st.booleans()),
        resolved=draw(st.booleans()),
        message_times=draw(st.dictionaries(ids, offsets, max_size=3)),
        window=draw(st.none() | st.tuples(offsets, offsets)),
        basis=None
        if basis_kind is None
        else Basis(basis_kind, draw(st.sampled_from(["c1", "r1"]))),
        consent=draw(st.none() | consents),
        approval=draw(st.none() | approvals),
        support_case=draw(st.none() | st.just("case7")),
    )


def _in_table(req: PolicyRequest) -> bool:
    kind = {
        ActorKind.USER: "owner",
        ActorKind.SERVICE: "service",
        ActorKind.OPERATOR: "operator",
        ActorKind.REVIEWER: "reviewer",
    }.get(req.actor.kind)
    return any(
        who == kind and req.operation in ops and req.purpose in purposes
        for who, ops, purposes, _variant, _grant in ALLOWED
    )


@settings(max_examples=800, deadline=None)
@given(requests())
def test_nothing_outside_the_table_is_ever_allowed(req: PolicyRequest) -> None:
    """Whatever the facts, only actor/operation/purpose triples in the table can be allowed."""
    verdict = decide(req)
    if verdict.allowed:
        assert _in_table(req)
        if req.actor.kind is ActorKind.USER:
            assert req.account_owner in (req.actor.id, None)
        if req.actor.kind is ActorKind.OPERATOR and req.operation in {
            Operation.METADATA_READ, Operation.CONTENT_READ, Operation.ATTACHMENT_READ,
        }:  # fmt: skip
            assert req.basis is not None
    else:
        assert verdict.reasons


@settings(max_examples=300, deadline=None)
@given(requests(), consents)
def test_a_consent_never_opens_another_message(req: PolicyRequest, consent: ConsentFact) -> None:
    """A consent-based read of any message the consent does not name is denied."""
    req = PolicyRequest(
        **{
            **{f: getattr(req, f) for f in req.__dataclass_fields__},
            "basis": Basis(BasisKind.CONSENT, consent.id),
            "consent": consent,
            "purpose": Purpose.CONSENTED_SUPPORT,
        }
    )
    if req.message_ids - consent.message_ids or req.mailbox_wide:
        assert not decide(req).allowed


@settings(max_examples=300, deadline=None)
@given(requests(), consents, approvals)
def test_expired_or_revoked_never_allows(
    req: PolicyRequest, consent: ConsentFact, approval: ApprovalFact
) -> None:
    """A dead consent (expired, revoked) or dead approval (expired, not approved) never allows."""
    base = {f: getattr(req, f) for f in req.__dataclass_fields__}
    dead_consent = consent.revoked_at is not None and consent.revoked_at <= NOW
    dead_consent = dead_consent or consent.expires_at <= NOW
    if dead_consent:
        for purpose in Purpose:
            with_consent = PolicyRequest(
                **{**base, "purpose": purpose, "consent": consent,
                   "basis": Basis(BasisKind.CONSENT, consent.id)}
            )  # fmt: skip
            verdict = decide(with_consent)
            assert not verdict.allowed or req.actor.kind is not ActorKind.OPERATOR
            if req.actor.kind is ActorKind.OPERATOR and purpose is Purpose.CONSENTED_SUPPORT:
                assert not verdict.allowed
    dead_approval = approval.expires_at is None or approval.expires_at <= NOW
    dead_approval = dead_approval or approval.effective_status(NOW) is not ApprovalStatus.APPROVED
    if dead_approval:
        with_approval = PolicyRequest(
            **{**base, "approval": approval, "basis": Basis(BasisKind.ACCESS_REQUEST, approval.id)}
        )
        verdict = decide(with_approval)
        if verdict.allowed:  # only the decide-a-pending-request grant may pass on a dead approval
            assert with_approval.operation is Operation.ACCESS_REQUEST_DECIDE


@settings(max_examples=300, deadline=None)
@given(requests(), approvals)
def test_nobody_approves_their_own_request(req: PolicyRequest, approval: ApprovalFact) -> None:
    """Deciding one's own request is denied; a self-approved request opens nothing."""
    own = PolicyRequest(
        **{
            **{f: getattr(req, f) for f in req.__dataclass_fields__},
            "actor": Actor(ActorKind.OPERATOR, approval.requester_id),
            "operation": Operation.ACCESS_REQUEST_DECIDE,
            "approval": approval,
            "basis": Basis(BasisKind.ACCESS_REQUEST, approval.id),
        }
    )
    verdict = decide(own)
    assert not verdict.allowed
    if own.purpose in {Purpose.SECURITY, Purpose.LEGAL}:
        assert Reason.APPROVAL_BY_REQUESTER in verdict.reasons
    self_approved = ApprovalFact(
        **{
            **{f: getattr(approval, f) for f in approval.__dataclass_fields__},
            "decided_by": approval.requester_id,
        }
    )
    use = PolicyRequest(
        **{
            **{f: getattr(req, f) for f in req.__dataclass_fields__},
            "approval": self_approved,
            "basis": Basis(BasisKind.ACCESS_REQUEST, approval.id),
        }
    )
    result = decide(use)
    assert not result.allowed or use.operation is Operation.ACCESS_REQUEST_DECIDE
