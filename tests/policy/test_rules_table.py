"""Every actor × operation × purpose × basis combination against a table of expectations."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from audit.event import Actor, Basis
from audit.vocab import FORBIDDEN_PURPOSES, ActorKind, BasisKind, Purpose
from connector.policy import ApprovalStatus, Operation, PolicyRequest, Reason, decide
from connector.policy.rules import GRANTS, PROHIBITION_RULE
from tests.policy.conftest import approval_fact, consent_fact

NOW = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
Op, P = Operation, Purpose
READS = {Op.METADATA_READ, Op.CONTENT_READ, Op.ATTACHMENT_READ}
OWNER_OPS = READS | {
    Op.DRAFT_READ, Op.DRAFT_WRITE, Op.MESSAGE_SEND, Op.HISTORY_READ, Op.ACCOUNT_UNLINK,
    Op.CONSENT_GRANT, Op.CONSENT_REVOKE, Op.MESSAGE_MODIFY, Op.LABEL_WRITE, Op.SETTINGS_READ,
    Op.SETTINGS_WRITE, Op.TRANSFER,
}  # fmt: skip
CASEWORK = {P.SECURITY, P.LEGAL}

# The expectation, written as rules independent of the implementation:
# (actor, operations, purposes, basis variant) -> grant name. Anything not listed is denied.
ALLOWED: list[tuple[str, set[Operation], set[Purpose], str, str]] = [
    ("owner", OWNER_OPS, {P.USER_FEATURE}, "none", "user.own_mailbox"),
    ("owner", {Op.ACCOUNT_LINK}, {P.USER_FEATURE}, "none", "user.link"),
    ("owner", {Op.ACCOUNT_READ}, {P.USER_FEATURE}, "none", "user.own_accounts"),
    ("service", {Op.METADATA_READ, Op.CONTENT_READ, Op.TRANSFER}, {P.USER_FEATURE}, "none",
     "service.owner_features"),
    ("service", {Op.ACCOUNT_NOTICE}, {P.USER_FEATURE}, "none", "service.unlinked_notice"),
    ("operator", READS, {P.CONSENTED_SUPPORT}, "consent", "operator.consented_support"),
    ("operator", READS, CASEWORK, "approval", "operator.approved_access"),
    ("operator", {Op.AGGREGATE_READ}, {P.AGGREGATE_OPS}, "none", "operator.aggregates"),
    ("operator", {Op.ACCESS_REQUEST_CREATE}, CASEWORK, "none", "operator.request_access"),
    ("operator", {Op.ACCESS_REQUEST_DECIDE}, CASEWORK, "pending", "operator.decide_access"),
    ("operator", {Op.ACCESS_REQUEST_READ}, CASEWORK, "none", "operator.access_queue"),
    ("reviewer", {Op.AUDIT_READ}, CASEWORK, "none", "reviewer.audit"),
    ("system", {Op.TOKEN_REFRESH}, {P.USER_FEATURE}, "none", "system.token_upkeep"),
    ("system", {Op.VAULT_ROTATE}, {P.USER_FEATURE}, "none", "system.vault_rotation"),
    ("system", {Op.RETENTION_RUN}, {P.USER_FEATURE}, "none", "system.retention"),
    ("system", {Op.ACCOUNT_UNLINK}, {P.USER_FEATURE}, "none", "system.dormant_unlink"),
    ("admin", {Op.DELIVERY_MANAGE}, {P.USER_FEATURE}, "none", "admin.delivery"),
]  # fmt: skip

ACTORS = {
    "owner": Actor(ActorKind.USER, "user1"),
    "other_user": Actor(ActorKind.USER, "user2"),
    "service": Actor(ActorKind.SERVICE, "sync"),
    "operator": Actor(ActorKind.OPERATOR, "op1"),
    "reviewer": Actor(ActorKind.REVIEWER, "rev1"),
    "admin": Actor(ActorKind.ADMIN, "adm1"),
    "system": Actor(ActorKind.SYSTEM, "connector"),
}
BASES = ("none", "consent", "approval", "pending")
ACCOUNTLESS = {Op.AGGREGATE_READ, Op.AUDIT_READ, Op.VAULT_ROTATE, Op.RETENTION_RUN}


def expected(actor: str, op: Operation, purpose: Purpose, basis: str) -> str | None:
    for who, ops, purposes, variant, grant in ALLOWED:
        if who == actor and op in ops and purpose in purposes and variant == basis:
            return grant
    return None


def request(actor: str, op: Operation, purpose: Purpose, basis: str) -> PolicyRequest:
    casework = purpose if purpose in CASEWORK else P.SECURITY
    consent = approval = None
    basis_ref = None
    if basis == "consent":
        basis_ref = Basis(BasisKind.CONSENT, "c1")
        consent = consent_fact({"m1"}, NOW - DAY, NOW + 6 * DAY)
    elif basis in {"approval", "pending"}:
        basis_ref = Basis(BasisKind.ACCESS_REQUEST, "r1")
        approval = approval_fact(casework, NOW - DAY, NOW + DAY, message_ids=frozenset({"m1"}))
        if basis == "pending":  # op2's own request, not yet decided
            approval = replace(
                approval, requester_id="op2", status=ApprovalStatus.PENDING, decided_by=None,
                expires_at=None,
            )  # fmt: skip
    return PolicyRequest(
        ACTORS[actor], op, purpose, NOW,
        account_id=None if op in ACCOUNTLESS else "acct1",
        account_owner=None if op in ACCOUNTLESS else "user1",
        message_ids=frozenset({"m1"}) if op in READS else frozenset(),
        basis=basis_ref, consent=consent, approval=approval,
    )  # fmt: skip


@pytest.mark.parametrize("actor", list(ACTORS))
def test_every_combination_matches_the_table(actor: str) -> None:
    """For this actor, every operation × purpose × basis decides exactly as the table says."""
    mismatches = []
    for op, purpose, basis in itertools.product(Operation, Purpose, BASES):
        verdict = decide(request(actor, op, purpose, basis))
        want = expected(actor, op, purpose, basis)
        got = verdict.rule if verdict.allowed else None
        if got != want:
            mismatches.append((op.value, purpose.value, basis, got, verdict.reasons))
        if not verdict.allowed:
            assert verdict.reasons, "a denial always says why"
        if purpose in FORBIDDEN_PURPOSES:
            assert not verdict.allowed
            assert verdict.rule == PROHIBITION_RULE
            assert Reason.PURPOSE_FORBIDDEN in verdict.reasons
    assert mismatches == []


def test_every_actor_kind_has_a_grant() -> None:
    """Why `decide` has no "actor kind not permitted" reason: no kind is left without a grant,
    so a refused kind is always refused for its operation or purpose."""
    assert set(ActorKind) == {g.actor for g in GRANTS}


def test_table_allows_something_for_each_listed_rule() -> None:
    """Each row of the expectation table is reachable (the table is not vacuous)."""
    for who, ops, purposes, variant, grant in ALLOWED:
        for op in ops:
            for purpose in purposes:
                verdict = decide(request(who, op, purpose, variant))
                assert verdict.allowed, (who, op, purpose, verdict.reasons)
                assert verdict.rule == grant


def test_denial_lists_every_reason() -> None:
    """A forbidden purpose on someone else's mailbox names both problems."""
    req = request("other_user", Op.CONTENT_READ, P.ADVERTISING, "none")
    verdict = decide(req)
    assert not verdict.allowed
    assert verdict.reasons == (Reason.PURPOSE_FORBIDDEN, Reason.ACTOR_NOT_OWNER)


def test_operator_consent_failures_are_all_reported() -> None:
    """An expired, revoked consent for another grantee reports all three at once."""
    consent = consent_fact(
        {"m1"}, NOW - timedelta(days=8), NOW - timedelta(days=1), grantee_id="op9",
        revoked_at=NOW - timedelta(days=2),
    )  # fmt: skip
    req = PolicyRequest(
        ACTORS["operator"], Op.CONTENT_READ, P.CONSENTED_SUPPORT, NOW, account_id="acct1",
        account_owner="user1", message_ids=frozenset({"m2"}),
        basis=Basis(BasisKind.CONSENT, "c1"), consent=consent,
    )  # fmt: skip
    verdict = decide(req)
    assert verdict.rule == "operator.consented_support"
    assert set(verdict.reasons) == {
        Reason.CONSENT_OTHER_GRANTEE,
        Reason.CONSENT_REVOKED,
        Reason.CONSENT_EXPIRED,
        Reason.CONSENT_NOT_COVERING,
    }
