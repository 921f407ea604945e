"""Pinned beyond one reason: several failures at once (every reason, in the rule's order, each
once), the route-level may_attempt, severity and the verdict values. Base cases and facts are
those of test_rules_pinned.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from audit.vocab import ActorKind, Purpose, Severity
from connector.policy.facts import ApprovalStatus
from connector.policy.rules import (
    DEFAULT_RULE,
    PROHIBITION_RULE,
    Allow,
    Deny,
    decide,
    may_attempt,
    severity,
)
from connector.policy.vocab import Operation, Reason
from tests.policy.test_rules_pinned import (
    BASES,
    CONSENT,
    DAY,
    NOW,
    OPERATOR,
    PENDING,
    RANGE_FROM,
    RANGE_TO,
    RANGED,
)

Op, P, R = Operation, Purpose, Reason


def test_wrong_purpose_still_evaluates_the_closest_grants_once() -> None:
    """A wrong purpose on an operator read reports the missing basis too, deduplicated."""
    req = replace(BASES["consent"][0], purpose=P.USER_FEATURE, basis=None)
    assert decide(req) == Deny(DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED, R.BASIS_MISSING))


def test_forbidden_purpose_lists_the_other_failures_after_it() -> None:
    """A forbidden purpose on someone else's mailbox is the prohibition, naming both problems."""
    req = replace(BASES["owner"][0], purpose=P.DATA_SALE, account_owner="user2")
    assert decide(req) == Deny(PROHIBITION_RULE, (R.PURPOSE_FORBIDDEN, R.ACTOR_NOT_OWNER))


def test_several_consent_failures_are_reported_in_order() -> None:
    """Every failed consent condition is listed, in the order the rule checks them."""
    consent = replace(
        CONSENT, account_id="acct2", granted_by="user2", grantee_id="op9",
        revoked_at=NOW - DAY, expires_at=NOW, created_at=NOW + DAY,
    )  # fmt: skip
    req = replace(BASES["consent"][0], consent=consent, mailbox_wide=True,
                  message_ids=frozenset({"m9"}))  # fmt: skip
    assert decide(req).reasons == (
        R.CONSENT_OTHER_ACCOUNT, R.CONSENT_NOT_BY_OWNER, R.CONSENT_OTHER_GRANTEE,
        R.CONSENT_REVOKED, R.CONSENT_EXPIRED, R.CONSENT_NOT_YET_VALID, R.CONSENT_NOT_SPECIFIC,
        R.CONSENT_NOT_COVERING,
    )  # fmt: skip


def test_several_approval_failures_are_reported_in_order() -> None:
    """An approval failing on every count lists each reason once, in the rule's order."""
    approval = replace(
        RANGED, account_id="acct2", requester_id="op7", purpose=P.LEGAL, has_reason=False,
        decided_by="op7", expires_at=NOW,
    )  # fmt: skip
    req = replace(
        BASES["ranged"][0],
        approval=approval,
        resolved=False,
        message_ids=frozenset({"m5", "m6", "m7"}),
        message_times={"m7": NOW},
    )
    assert decide(req).reasons == (
        R.APPROVAL_OTHER_ACCOUNT, R.APPROVAL_NOT_REQUESTER, R.APPROVAL_PURPOSE_MISMATCH,
        R.APPROVAL_INCOMPLETE, R.APPROVAL_SELF_APPROVED, R.APPROVAL_EXPIRED,
        R.RESOURCE_UNRESOLVED, R.APPROVAL_NOT_COVERING,
    )  # fmt: skip


def test_unnamed_message_with_known_date_outside_range_is_not_covering_once() -> None:
    """Several uncovered messages give APPROVAL_NOT_COVERING once, not once per message."""
    req = replace(
        BASES["ranged"][0],
        message_ids=frozenset({"m5", "m6", "m7"}),
        message_times={"m5": NOW, "m6": NOW, "m7": NOW},
    )
    assert decide(req) == Deny("operator.approved_access", (R.APPROVAL_NOT_COVERING,))


def test_every_unnamed_message_is_checked_not_just_the_first() -> None:
    """One undated-outside message among many covered ones is found wherever the set puts it.

    Set order follows string hashing, which changes per process: with 30 covered messages and
    three independent sets, stopping after the first covered message escapes all three only
    about once in 30,000 runs.
    """
    for n in range(3):
        covered = {f"ok{n}_{i}": RANGE_FROM for i in range(30)}
        times = {**covered, f"late{n}": RANGE_TO}
        req = replace(BASES["ranged"][0], message_ids=frozenset(times), message_times=times)
        assert decide(req) == Deny("operator.approved_access", (R.APPROVAL_NOT_COVERING,))


def test_decide_failures_are_reported_together() -> None:
    """Deciding one's own, incomplete, already approved request for another account: all four."""
    approval = replace(
        PENDING, account_id="acct2", has_case_reference=False, status=ApprovalStatus.APPROVED
    )
    req = replace(BASES["decide"][0], actor=OPERATOR, approval=approval)
    assert decide(req) == Deny("operator.decide_access", (
        R.APPROVAL_OTHER_ACCOUNT, R.APPROVAL_BY_REQUESTER, R.APPROVAL_INCOMPLETE,
        R.APPROVAL_NOT_PENDING,
    ))  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "operation", "purposes", "verdict"),
    [
        (ActorKind.ADMIN, Op.AUDIT_READ, {P.SECURITY}, Deny(DEFAULT_RULE,
         (R.OPERATION_NOT_PERMITTED,))),
        (ActorKind.REVIEWER, Op.CONTENT_READ, {P.SECURITY}, Deny(DEFAULT_RULE,
         (R.OPERATION_NOT_PERMITTED,))),
        (ActorKind.USER, Op.CONTENT_READ, {P.SECURITY, P.LEGAL}, Deny(DEFAULT_RULE,
         (R.PURPOSE_NOT_PERMITTED,))),
        (ActorKind.USER, Op.CONTENT_READ, set(), Deny(DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,))),
        (ActorKind.USER, Op.CONTENT_READ, {P.SECURITY, P.USER_FEATURE},
         Allow("user.own_mailbox")),
        (ActorKind.USER, Op.ACCOUNT_READ, {P.USER_FEATURE}, Allow("user.own_accounts")),
        (ActorKind.OPERATOR, Op.CONTENT_READ, {P.LEGAL}, Allow("operator.approved_access")),
        (ActorKind.OPERATOR, Op.CONTENT_READ, {P.LEGAL, P.CONSENTED_SUPPORT},
         Allow("operator.consented_support")),
        (ActorKind.SYSTEM, Op.VAULT_ROTATE, {P.USER_FEATURE}, Allow("system.vault_rotation")),
    ],
)  # fmt: skip
def test_may_attempt(
    kind: ActorKind, operation: Operation, purposes: set[Purpose], verdict: Allow | Deny
) -> None:
    """Before any facts, only actor kind, operation and purposes can refuse; the first fitting
    grant (in table order) is named."""
    assert may_attempt(kind, operation, frozenset(purposes)) == verdict


@pytest.mark.parametrize(
    ("verdict", "level"),
    [
        (Allow("user.own_mailbox"), Severity.INFO),
        (Deny(PROHIBITION_RULE, (R.PURPOSE_FORBIDDEN,)), Severity.HIGH),
        (Deny("user.own_mailbox", (R.ACTOR_NOT_OWNER,)), Severity.HIGH),
        (Deny(DEFAULT_RULE, (R.BASIS_MISSING, R.ACTOR_NOT_OWNER)), Severity.HIGH),
        (Deny(DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,)), Severity.WARNING),
        (Deny("operator.consented_support", (R.CONSENT_EXPIRED,)), Severity.WARNING),
    ],
)
def test_severity(verdict: Allow | Deny, level: Severity) -> None:
    """Allowed is info; forbidden purposes and another owner's mailbox are high; else warning."""
    assert severity(verdict) is level


def test_verdict_shapes() -> None:
    """An Allow is allowed with no reasons; a Deny is not allowed and keeps its reasons."""
    allow, deny = Allow("g"), Deny("g", (R.BASIS_MISSING,))
    assert (allow.allowed, allow.reasons) == (True, ())
    assert (deny.allowed, deny.reasons) == (False, (R.BASIS_MISSING,))
