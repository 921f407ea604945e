"""Every reason pinned: an allowed base request, exactly one fact changed, exactly one reason.

Each row starts from a request that a grant allows and changes one fact (a field of the request,
of its consent or of its approval). The verdict must then be a denial by the named rule with
exactly the listed reasons, so removing or weakening any single check in `rules.py` fails a row
even where another layer (the gate, the stores) would also refuse. Time boundaries are pinned on
both sides: the instant a consent or approval expires is already too late, one microsecond
before is still fine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.event import Actor, Basis
from audit.vocab import ActorKind, BasisKind, Purpose
from connector.policy.facts import PENDING_LIMIT, ApprovalStatus, GranteeKind, PolicyRequest
from connector.policy.rules import (
    DEFAULT_RULE,
    GRANTS,
    PROHIBITION_RULE,
    Allow,
    Deny,
    decide,
)
from connector.policy.vocab import Operation, Reason
from tests.policy.conftest import approval_fact, consent_fact

NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)
Op, P, R = Operation, Purpose, Reason
OWNER = Actor(ActorKind.USER, "user1")
OPERATOR = Actor(ActorKind.OPERATOR, "op1")
SYSTEM = Actor(ActorKind.SYSTEM, "connector")
ADMIN = Actor(ActorKind.ADMIN, "adm1")
DELIVERY = Actor(ActorKind.SERVICE, "connector-delivery")

CONSENT = consent_fact({"m1", "m2"}, NOW - DAY, NOW + 6 * DAY)
APPROVED = approval_fact(P.SECURITY, NOW - DAY, NOW + DAY, message_ids=frozenset({"m1"}))
RANGE_FROM, RANGE_TO = NOW - 10 * DAY, NOW - DAY
RANGED = replace(APPROVED, message_ids=frozenset(), time_from=RANGE_FROM, time_to=RANGE_TO)
PENDING = replace(APPROVED, status=ApprovalStatus.PENDING, decided_by=None, expires_at=None)
ON_ACCOUNT = {"account_id": "acct1", "account_owner": "user1"}

# name -> (request a grant allows, the grant's name)
BASES: dict[str, tuple[PolicyRequest, str]] = {
    "owner": (
        PolicyRequest(OWNER, Op.CONTENT_READ, P.USER_FEATURE, NOW, **ON_ACCOUNT,
                      message_ids=frozenset({"m1"})),
        "user.own_mailbox",
    ),
    "link": (
        PolicyRequest(OWNER, Op.ACCOUNT_LINK, P.USER_FEATURE, NOW, account_id="acct1"),
        "user.link",
    ),
    "accounts": (
        PolicyRequest(OWNER, Op.ACCOUNT_READ, P.USER_FEATURE, NOW),
        "user.own_accounts",
    ),
    "queue": (
        PolicyRequest(OPERATOR, Op.ACCESS_REQUEST_READ, P.SECURITY, NOW),
        "operator.access_queue",
    ),
    "service": (
        PolicyRequest(Actor(ActorKind.SERVICE, "sync"), Op.METADATA_READ, P.USER_FEATURE, NOW,
                      **ON_ACCOUNT),
        "service.owner_features",
    ),
    "consent": (
        PolicyRequest(OPERATOR, Op.CONTENT_READ, P.CONSENTED_SUPPORT, NOW, **ON_ACCOUNT,
                      message_ids=frozenset({"m1"}), basis=Basis(BasisKind.CONSENT, "c1"),
                      consent=CONSENT),
        "operator.consented_support",
    ),
    "case_consent": (
        PolicyRequest(OPERATOR, Op.METADATA_READ, P.CONSENTED_SUPPORT, NOW, **ON_ACCOUNT,
                      message_ids=frozenset({"m2"}), basis=Basis(BasisKind.CONSENT, "c1"),
                      consent=replace(CONSENT, grantee_kind=GranteeKind.SUPPORT_CASE,
                                      grantee_id="case7"),
                      support_case="case7"),
        "operator.consented_support",
    ),
    "approval": (
        PolicyRequest(OPERATOR, Op.CONTENT_READ, P.SECURITY, NOW, **ON_ACCOUNT,
                      message_ids=frozenset({"m1"}),
                      basis=Basis(BasisKind.ACCESS_REQUEST, "r1"), approval=APPROVED),
        "operator.approved_access",
    ),
    "ranged": (  # a message outside the approval's ids, dated inside its time range
        PolicyRequest(OPERATOR, Op.ATTACHMENT_READ, P.SECURITY, NOW, **ON_ACCOUNT,
                      message_ids=frozenset({"m5"}), message_times={"m5": RANGE_FROM},
                      basis=Basis(BasisKind.ACCESS_REQUEST, "r1"), approval=RANGED),
        "operator.approved_access",
    ),
    "wide": (  # a mailbox-wide listing bounded exactly to the approval's range
        PolicyRequest(OPERATOR, Op.METADATA_READ, P.LEGAL, NOW, **ON_ACCOUNT, mailbox_wide=True,
                      window=(RANGE_FROM, RANGE_TO),
                      basis=Basis(BasisKind.ACCESS_REQUEST, "r1"),
                      approval=replace(RANGED, purpose=P.LEGAL)),
        "operator.approved_access",
    ),
    "aggregates": (
        PolicyRequest(OPERATOR, Op.AGGREGATE_READ, P.AGGREGATE_OPS, NOW),
        "operator.aggregates",
    ),
    "request": (
        PolicyRequest(OPERATOR, Op.ACCESS_REQUEST_CREATE, P.LEGAL, NOW, **ON_ACCOUNT),
        "operator.request_access",
    ),
    "decide": (
        PolicyRequest(Actor(ActorKind.OPERATOR, "op2"), Op.ACCESS_REQUEST_DECIDE, P.SECURITY,
                      NOW, **ON_ACCOUNT, basis=Basis(BasisKind.ACCESS_REQUEST, "r1"),
                      approval=PENDING),
        "operator.decide_access",
    ),
    "audit": (
        PolicyRequest(Actor(ActorKind.REVIEWER, "rev1"), Op.AUDIT_READ, P.SECURITY, NOW),
        "reviewer.audit",
    ),
    "token": (
        PolicyRequest(SYSTEM, Op.TOKEN_REFRESH, P.USER_FEATURE, NOW, **ON_ACCOUNT),
        "system.token_upkeep",
    ),
    "rotate": (
        PolicyRequest(SYSTEM, Op.VAULT_ROTATE, P.USER_FEATURE, NOW),
        "system.vault_rotation",
    ),
    "retention": (PolicyRequest(SYSTEM, Op.RETENTION_RUN, P.USER_FEATURE, NOW), "system.retention"),
    "dormant": (PolicyRequest(SYSTEM, Op.ACCOUNT_UNLINK, P.USER_FEATURE, NOW, **ON_ACCOUNT),
                "system.dormant_unlink"),
    "delivery": (PolicyRequest(ADMIN, Op.DELIVERY_MANAGE, P.USER_FEATURE, NOW, **ON_ACCOUNT),
                 "admin.delivery"),
    "dead_letters": (PolicyRequest(ADMIN, Op.DELIVERY_MANAGE, P.USER_FEATURE, NOW),
                     "admin.delivery"),
    # the `unlinked` webhook: the account is purged, so it has no owner any more
    "gone": (PolicyRequest(DELIVERY, Op.ACCOUNT_NOTICE, P.USER_FEATURE, NOW, account_id="acct1"),
             "service.unlinked_notice"),
}  # fmt: skip

STRAY_BASIS = {"basis": Basis(BasisKind.CONSENT, "c1")}

# (base, the one change, rule of the denial (None: the base grant), exact reasons).
# A change key "consent.x" / "approval.x" replaces field x of the request's consent / approval.
CASES: list[tuple[str, dict[str, Any], str | None, tuple[Reason, ...]]] = [
    # purpose, actor kind, operation
    ("owner", {"purpose": P.ADVERTISING}, PROHIBITION_RULE, (R.PURPOSE_FORBIDDEN,)),
    ("request", {"purpose": P.MODEL_TRAINING}, PROHIBITION_RULE, (R.PURPOSE_FORBIDDEN,)),
    ("owner", {"purpose": P.SECURITY}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    ("aggregates", {"purpose": P.SECURITY}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    ("audit", {"purpose": P.USER_FEATURE}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    # every actor kind has a grant (admin: webhook upkeep), so a wrong kind is a wrong operation
    ("audit", {"actor": Actor(ActorKind.ADMIN, "adm1")}, DEFAULT_RULE,
     (R.OPERATION_NOT_PERMITTED,)),
    ("token", {"actor": Actor(ActorKind.ADMIN, "adm1")}, DEFAULT_RULE,
     (R.OPERATION_NOT_PERMITTED,)),
    ("delivery", {"account_owner": None}, None, (R.ACCOUNT_UNKNOWN,)),
    ("delivery", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("delivery", {"actor": OPERATOR}, DEFAULT_RULE, (R.OPERATION_NOT_PERMITTED,)),
    ("dead_letters", {"purpose": P.SECURITY}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    ("audit", {"actor": SYSTEM}, DEFAULT_RULE, (R.OPERATION_NOT_PERMITTED,)),
    ("token", {"purpose": P.SECURITY}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    ("queue", {"purpose": P.CONSENTED_SUPPORT}, DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)),
    ("service", {"operation": Op.MESSAGE_SEND}, DEFAULT_RULE, (R.OPERATION_NOT_PERMITTED,)),
    ("audit", {"operation": Op.CONTENT_READ}, DEFAULT_RULE, (R.OPERATION_NOT_PERMITTED,)),
    # the owner, the account
    ("owner", {"account_owner": "user2"}, None, (R.ACTOR_NOT_OWNER,)),
    ("owner", {"actor": Actor(ActorKind.USER, "user2")}, None, (R.ACTOR_NOT_OWNER,)),
    ("link", {"account_owner": "user2"}, None, (R.ACTOR_NOT_OWNER,)),
    ("accounts", ON_ACCOUNT | {"account_owner": "user2"}, None, (R.ACTOR_NOT_OWNER,)),
    ("accounts", {"account_id": "acct1"}, None, (R.ACCOUNT_UNKNOWN,)),
    ("owner", {"account_owner": None}, None, (R.ACCOUNT_UNKNOWN,)),
    ("service", {"account_owner": None}, None, (R.ACCOUNT_UNKNOWN,)),
    ("request", {"account_owner": None}, None, (R.ACCOUNT_UNKNOWN,)),
    ("owner", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("token", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("dormant", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("gone", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("gone", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("gone", {"purpose": P.ADVERTISING}, PROHIBITION_RULE, (R.PURPOSE_FORBIDDEN,)),
    ("gone", {"actor": SYSTEM}, DEFAULT_RULE, (R.OPERATION_NOT_PERMITTED,)),
    ("dormant", {"account_owner": None}, None, (R.ACCOUNT_UNKNOWN,)),
    ("service", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("request", {"account_id": None}, None, (R.ACCOUNT_REQUIRED,)),
    ("aggregates", {"account_id": "acct1"}, None, (R.ACCOUNT_SCOPED,)),
    ("rotate", {"account_id": "acct1"}, None, (R.ACCOUNT_SCOPED,)),
    # a human-access basis where none belongs
    ("owner", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("link", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("service", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("dormant", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("aggregates", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("request", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("audit", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("accounts", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("queue", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("token", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    ("rotate", STRAY_BASIS, None, (R.BASIS_NOT_ALLOWED,)),
    # the basis of human access
    ("consent", {"basis": None}, None, (R.BASIS_MISSING,)),
    ("approval", {"basis": None}, None, (R.BASIS_MISSING,)),
    ("decide", {"basis": None}, None, (R.BASIS_MISSING,)),
    ("consent", {"basis": Basis(BasisKind.ACCESS_REQUEST, "c1")}, None, (R.BASIS_WRONG_KIND,)),
    ("approval", {"basis": Basis(BasisKind.CONSENT, "r1")}, None, (R.BASIS_WRONG_KIND,)),
    ("decide", {"basis": Basis(BasisKind.CONSENT, "r1")}, None, (R.BASIS_WRONG_KIND,)),
    ("consent", {"basis": Basis(BasisKind.CONSENT, "c2")}, None, (R.BASIS_UNKNOWN,)),
    ("consent", {"consent": None}, None, (R.BASIS_UNKNOWN,)),
    ("approval", {"basis": Basis(BasisKind.ACCESS_REQUEST, "r2")}, None, (R.BASIS_UNKNOWN,)),
    ("approval", {"approval": None}, None, (R.BASIS_UNKNOWN,)),
    ("decide", {"approval": None}, None, (R.BASIS_UNKNOWN,)),
    ("decide", {"basis": Basis(BasisKind.ACCESS_REQUEST, "r2")}, None, (R.BASIS_UNKNOWN,)),
    # consents
    ("consent", {"consent.account_id": "acct2"}, None, (R.CONSENT_OTHER_ACCOUNT,)),
    ("consent", {"consent.granted_by": "user2"}, None, (R.CONSENT_NOT_BY_OWNER,)),
    ("consent", {"account_owner": None}, None, (R.CONSENT_NOT_BY_OWNER,)),
    ("consent", {"consent.grantee_id": "op9"}, None, (R.CONSENT_OTHER_GRANTEE,)),
    ("consent", {"actor": Actor(ActorKind.OPERATOR, "op2")}, None, (R.CONSENT_OTHER_GRANTEE,)),
    ("consent", {"consent.grantee_kind": GranteeKind.SUPPORT_CASE}, None,
     (R.CONSENT_OTHER_GRANTEE,)),
    ("case_consent", {"support_case": None}, None, (R.CONSENT_OTHER_GRANTEE,)),
    ("case_consent", {"support_case": "case8"}, None, (R.CONSENT_OTHER_GRANTEE,)),
    ("case_consent", {"consent.grantee_kind": GranteeKind.OPERATOR}, None,
     (R.CONSENT_OTHER_GRANTEE,)),
    ("consent", {"consent.revoked_at": NOW}, None, (R.CONSENT_REVOKED,)),
    ("consent", {"consent.revoked_at": NOW - DAY}, None, (R.CONSENT_REVOKED,)),
    ("consent", {"consent.expires_at": NOW}, None, (R.CONSENT_EXPIRED,)),
    ("consent", {"consent.expires_at": NOW - DAY}, None, (R.CONSENT_EXPIRED,)),
    ("consent", {"consent.created_at": NOW + US}, None, (R.CONSENT_NOT_YET_VALID,)),
    ("consent", {"mailbox_wide": True}, None, (R.CONSENT_NOT_SPECIFIC,)),
    ("consent", {"message_ids": frozenset({"m1", "m3"})}, None, (R.CONSENT_NOT_COVERING,)),
    ("consent", {"resolved": False}, None, (R.RESOURCE_UNRESOLVED,)),
    ("consent", {"message_ids": frozenset()}, None, (R.RESOURCE_REQUIRED,)),
    # approvals (using one)
    ("approval", {"approval.account_id": "acct2"}, None, (R.APPROVAL_OTHER_ACCOUNT,)),
    ("approval", {"actor": Actor(ActorKind.OPERATOR, "op3")}, None, (R.APPROVAL_NOT_REQUESTER,)),
    ("approval", {"purpose": P.LEGAL}, None, (R.APPROVAL_PURPOSE_MISMATCH,)),
    ("approval", {"approval.has_case_reference": False}, None, (R.APPROVAL_INCOMPLETE,)),
    ("approval", {"approval.has_reason": False}, None, (R.APPROVAL_INCOMPLETE,)),
    ("approval", {"approval.status": ApprovalStatus.PENDING}, None, (R.APPROVAL_PENDING,)),
    ("approval", {"approval.status": ApprovalStatus.DISMISSED}, None, (R.APPROVAL_DISMISSED,)),
    ("approval", {"approval.status": ApprovalStatus.STALE}, None, (R.APPROVAL_STALE,)),
    ("approval", {"approval.decided_by": "op1"}, None, (R.APPROVAL_SELF_APPROVED,)),
    ("approval", {"approval.decided_by": None}, None, (R.APPROVAL_SELF_APPROVED,)),
    ("approval", {"approval.expires_at": NOW}, None, (R.APPROVAL_EXPIRED,)),
    ("approval", {"approval.expires_at": NOW - DAY}, None, (R.APPROVAL_EXPIRED,)),
    ("approval", {"approval.expires_at": None}, None, (R.APPROVAL_EXPIRED,)),
    ("approval", {"message_ids": frozenset({"m1", "m2"})}, None, (R.APPROVAL_NOT_COVERING,)),
    ("approval", {"message_ids": frozenset({"m2"}), "message_times": {"m2": NOW - DAY}}, None,
     (R.APPROVAL_NOT_COVERING,)),
    ("approval", {"resolved": False}, None, (R.RESOURCE_UNRESOLVED,)),
    ("approval", {"message_ids": frozenset()}, None, (R.RESOURCE_REQUIRED,)),
    ("approval", {"mailbox_wide": True}, None, (R.APPROVAL_NOT_COVERING,)),
    # approvals by time range: [time_from, time_to)
    ("ranged", {"message_times": {}}, None, (R.RESOURCE_UNRESOLVED,)),
    ("ranged", {"message_times": {"m5": RANGE_FROM - US}}, None, (R.APPROVAL_NOT_COVERING,)),
    ("ranged", {"message_times": {"m5": RANGE_TO}}, None, (R.APPROVAL_NOT_COVERING,)),
    ("ranged", {"approval.time_to": None}, None, (R.APPROVAL_NOT_COVERING,)),
    ("ranged", {"resolved": False}, None, (R.RESOURCE_UNRESOLVED,)),
    ("wide", {"window": None}, None, (R.APPROVAL_NOT_COVERING,)),
    ("wide", {"window": (RANGE_FROM - US, RANGE_TO)}, None, (R.APPROVAL_NOT_COVERING,)),
    ("wide", {"window": (RANGE_FROM, RANGE_TO + US)}, None, (R.APPROVAL_NOT_COVERING,)),
    ("wide", {"window": (RANGE_TO - US, RANGE_FROM + US)}, None, (R.APPROVAL_NOT_COVERING,)),
    ("wide", {"approval.time_from": None}, None, (R.APPROVAL_NOT_COVERING,)),
    ("wide", {"approval.time_to": None}, None, (R.APPROVAL_NOT_COVERING,)),
    # approvals (deciding one)
    ("decide", {"actor": Actor(ActorKind.OPERATOR, "op1")}, None, (R.APPROVAL_BY_REQUESTER,)),
    ("decide", {"approval.account_id": "acct2"}, None, (R.APPROVAL_OTHER_ACCOUNT,)),
    ("decide", {"purpose": P.LEGAL}, None, (R.APPROVAL_PURPOSE_MISMATCH,)),
    ("decide", {"approval.has_case_reference": False}, None, (R.APPROVAL_INCOMPLETE,)),
    ("decide", {"approval.has_reason": False}, None, (R.APPROVAL_INCOMPLETE,)),
    ("decide", {"approval.created_at": NOW - PENDING_LIMIT - US}, None, (R.APPROVAL_STALE,)),
    ("decide", {"approval.status": ApprovalStatus.STALE}, None, (R.APPROVAL_STALE,)),
    ("decide", {"approval.status": ApprovalStatus.APPROVED}, None, (R.APPROVAL_NOT_PENDING,)),
    ("decide", {"approval.status": ApprovalStatus.DISMISSED}, None, (R.APPROVAL_NOT_PENDING,)),
]  # fmt: skip

# The other side of each boundary: the same base, one change, still allowed.
STILL_ALLOWED: list[tuple[str, dict[str, Any]]] = [
    ("consent", {"consent.revoked_at": NOW + US}),
    ("consent", {"consent.expires_at": NOW + US}),
    ("consent", {"consent.created_at": NOW}),
    ("consent", {"message_ids": frozenset({"m1", "m2"})}),
    ("approval", {"approval.expires_at": NOW + US}),
    ("approval", {"approval.legal_hold": True}),
    ("ranged", {"message_times": {"m5": RANGE_TO - US}}),
    ("ranged", {"message_ids": frozenset({"m5", "m6"}),
                "message_times": {"m5": RANGE_FROM, "m6": RANGE_TO - US}}),
    ("wide", {"window": (RANGE_FROM + US, RANGE_TO - US)}),
    ("wide", {"window": (RANGE_TO, RANGE_TO)}),
    ("decide", {"approval.created_at": NOW - PENDING_LIMIT}),
    ("decide", {"purpose": P.LEGAL, "approval.purpose": P.LEGAL}),
    ("link", {"account_owner": "user1"}),
    ("link", {"account_id": None}),
    ("accounts", ON_ACCOUNT),
    ("queue", {"purpose": P.LEGAL}),
    ("token", {"account_owner": None}),
    ("gone", {"account_owner": "user1"}),
    ("owner", {"operation": Op.MESSAGE_SEND, "message_ids": frozenset()}),
]  # fmt: skip


def changed(base: str, change: dict[str, Any]) -> PolicyRequest:
    """The base request with the given fields (of it, its consent or its approval) replaced."""
    req = BASES[base][0]
    top = {k: v for k, v in change.items() if "." not in k}
    for part in ("consent", "approval"):
        inner = {k.split(".", 1)[1]: v for k, v in change.items() if k.startswith(part + ".")}
        if inner:
            top[part] = replace(getattr(req, part), **inner)
    return replace(req, **top)


def case_id(case: tuple[str, dict[str, Any], Any, tuple[Reason, ...]]) -> str:
    base, change, _rule, reasons = case
    return f"{base}:{','.join(change)}->{'+'.join(r.value for r in reasons)}"


@pytest.mark.parametrize("name", list(BASES))
def test_every_base_case_is_allowed(name: str) -> None:
    """Each base request is allowed, by the grant the table names."""
    req, grant = BASES[name]
    assert decide(req) == Allow(grant)


@pytest.mark.parametrize(("base", "change", "rule", "reasons"), CASES, ids=map(case_id, CASES))
def test_one_change_gives_exactly_one_reason(
    base: str, change: dict[str, Any], rule: str | None, reasons: tuple[Reason, ...]
) -> None:
    """Changing one fact of an allowed request denies it by the named rule, for exactly this."""
    verdict = decide(changed(base, change))
    assert verdict == Deny(rule or BASES[base][1], reasons)


@pytest.mark.parametrize(("base", "change"), STILL_ALLOWED)
def test_other_side_of_each_boundary_is_allowed(base: str, change: dict[str, Any]) -> None:
    """Just inside each limit (one microsecond, the range's edges) the request stays allowed."""
    assert decide(changed(base, change)) == Allow(BASES[base][1])


def test_every_grant_has_an_allowed_base_case() -> None:
    """The base cases cover every grant, so a new grant cannot go unpinned."""
    assert {grant for _req, grant in BASES.values()} == {g.name for g in GRANTS}


def test_every_reason_is_pinned_by_some_row() -> None:
    """The table names every Reason the policy has, so a new one cannot go unpinned."""
    pinned = {reason for case in CASES for reason in case[3]}
    assert pinned == set(Reason)
