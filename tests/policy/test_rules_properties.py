"""Property-based checks: generate an allowed request, break one fact, get exactly that denial.

A property that feeds a bad fact into random requests proves little: most random requests are
denied for other reasons anyway, so it passes even when the rule it is about is gone. Here every
example is first shown to be allowed, then exactly one fact is broken, and the verdict must be a
denial by the same grant for exactly the broken fact's reason. One deny-by-default fuzz over
random facts stays, because its claim is about everything outside the grant table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from audit.event import Actor, Basis
from audit.vocab import FORBIDDEN_PURPOSES, ActorKind, BasisKind, Purpose
from connector.policy.facts import (
    PENDING_LIMIT,
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRequest,
)
from connector.policy.rules import DEFAULT_RULE, PROHIBITION_RULE, Allow, Deny, decide
from connector.policy.vocab import ALLOWED_PURPOSES, Operation, Reason
from tests.policy.test_rules_table import OWNER_OPS, READS

US = timedelta(microseconds=1)
R = Reason
CASEWORK = (Purpose.SECURITY, Purpose.LEGAL)
MODES = ("ids", "range", "wide")  # how an approval covers a request: see approval_requests
names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
messages = st.sampled_from([f"m{i}" for i in range(8)])
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
# strictly positive / non-negative spans, from one microsecond up to ~60 days
positive = st.integers(min_value=1, max_value=60 * 86_400 * 10**6).map(lambda n: n * US)
non_negative = st.integers(min_value=0, max_value=60 * 86_400 * 10**6).map(lambda n: n * US)
Breaker = Callable[[st.DrawFn, PolicyRequest], tuple[PolicyRequest, Reason] | None]


@st.composite
def cast(draw: st.DrawFn) -> dict[str, str]:
    """Distinct ids for everyone in a scene, and two distinct accounts."""
    who = draw(st.lists(names, min_size=7, max_size=7, unique=True))
    keys = ("owner", "other", "op_a", "op_b", "op_c", "case", "case2")
    out = dict(zip(keys, who, strict=True))
    acct, acct2 = draw(st.lists(names, min_size=2, max_size=2, unique=True))
    return {**out, "acct": acct, "acct2": acct2}


@st.composite
def consent_requests(draw: st.DrawFn) -> PolicyRequest:
    """An operator's read that an owner's live consent covers."""
    c, now = draw(cast()), draw(instants)
    kind = draw(st.sampled_from(GranteeKind))
    grantee = c["op_a"] if kind is GranteeKind.OPERATOR else c["case"]
    case = c["case"] if kind is GranteeKind.SUPPORT_CASE else draw(st.none() | st.just(c["case"]))
    named = draw(st.frozensets(messages, min_size=1))
    consent = ConsentFact(
        "c1", c["acct"], c["owner"], kind, grantee, named,
        created_at=now - draw(non_negative), expires_at=now + draw(positive),
        revoked_at=draw(st.none() | positive.map(lambda d: now + d)),
    )  # fmt: skip
    return PolicyRequest(
        Actor(ActorKind.OPERATOR, c["op_a"]), draw(st.sampled_from(sorted(READS))),
        Purpose.CONSENTED_SUPPORT, now, account_id=c["acct"], account_owner=c["owner"],
        message_ids=draw(st.frozensets(st.sampled_from(sorted(named)), min_size=1)),
        basis=Basis(BasisKind.CONSENT, "c1"), consent=consent, support_case=case,
    )  # fmt: skip


@st.composite
def approval_requests(draw: st.DrawFn, modes: tuple[str, ...] = MODES) -> PolicyRequest:
    """An operator's read covered by another operator's live approval.

    Coverage is by named messages, by messages dated in the approval's range, or mailbox-wide
    inside the range. The request was created at most PENDING_LIMIT ago (so re-opening it makes
    it pending, not stale).
    """
    c, now, mode = draw(cast()), draw(instants), draw(st.sampled_from(modes))
    purpose = draw(st.sampled_from(CASEWORK))
    start = now - draw(positive)
    end = start + draw(positive)
    span_us = (end - start) // US
    inside = st.integers(min_value=0, max_value=span_us - 1).map(lambda n: start + n * US)
    extra: dict[str, object] = {}
    if mode == "ids":
        named = draw(st.frozensets(messages, min_size=1))
        ranged = draw(st.booleans())
        extra["message_ids"] = draw(st.frozensets(st.sampled_from(sorted(named)), min_size=1))
    else:
        named, ranged = frozenset(), True
        if mode == "range":
            ids = draw(st.frozensets(messages, min_size=1))
            extra["message_ids"] = ids
            extra["message_times"] = {m: draw(inside) for m in ids}
        else:
            lo, hi = sorted([draw(inside), draw(inside)])
            extra["mailbox_wide"], extra["window"] = True, (lo, hi)
    approval = ApprovalFact(
        "r1", c["acct"], c["op_a"], purpose, ApprovalStatus.APPROVED,
        created_at=now - draw(st.integers(0, PENDING_LIMIT // US).map(lambda n: n * US)),
        message_ids=named, time_from=start if ranged else None, time_to=end if ranged else None,
        has_case_reference=True, has_reason=True, decided_by=c["op_b"],
        expires_at=now + draw(positive), legal_hold=draw(st.booleans()),
    )  # fmt: skip
    return PolicyRequest(
        Actor(ActorKind.OPERATOR, c["op_a"]), draw(st.sampled_from(sorted(READS))), purpose, now,
        account_id=c["acct"], account_owner=c["owner"],
        basis=Basis(BasisKind.ACCESS_REQUEST, "r1"), approval=approval,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


@st.composite
def decide_requests(draw: st.DrawFn) -> PolicyRequest:
    """A second operator deciding a complete request pending for at most PENDING_LIMIT."""
    c, now = draw(cast()), draw(instants)
    purpose = draw(st.sampled_from(CASEWORK))
    approval = ApprovalFact(
        "r1", c["acct"], c["op_a"], purpose, ApprovalStatus.PENDING,
        created_at=now - draw(st.integers(0, PENDING_LIMIT // US).map(lambda n: n * US)),
        message_ids=draw(st.frozensets(messages)), has_case_reference=True, has_reason=True,
    )  # fmt: skip
    return PolicyRequest(
        Actor(ActorKind.OPERATOR, c["op_b"]), Operation.ACCESS_REQUEST_DECIDE, purpose, now,
        account_id=c["acct"], account_owner=c["owner"],
        basis=Basis(BasisKind.ACCESS_REQUEST, "r1"), approval=approval,
    )  # fmt: skip


@st.composite
def owner_requests(draw: st.DrawFn) -> PolicyRequest:
    """The owner doing any owner operation on his own mailbox for his own features."""
    c = draw(cast())
    return PolicyRequest(
        Actor(ActorKind.USER, c["owner"]), draw(st.sampled_from(sorted(OWNER_OPS))),
        Purpose.USER_FEATURE, draw(instants), account_id=c["acct"], account_owner=c["owner"],
        message_ids=draw(st.frozensets(messages)),
    )  # fmt: skip


def _other(c: str) -> str:
    return c + "x"


def _past(draw: st.DrawFn, req: PolicyRequest) -> datetime:
    return req.now - draw(non_negative)


CONSENT_BREAKERS: dict[str, Breaker] = {
    "other account": lambda d, r: (replace(r, consent=replace(
        r.consent, account_id=_other(r.account_id or ""))), R.CONSENT_OTHER_ACCOUNT),
    "not by owner": lambda d, r: (replace(r, consent=replace(
        r.consent, granted_by=_other(r.account_owner or ""))), R.CONSENT_NOT_BY_OWNER),
    "other grantee": lambda d, r: (replace(r, consent=replace(
        r.consent, grantee_id=_other(r.consent.grantee_id))), R.CONSENT_OTHER_GRANTEE),
    "revoked": lambda d, r: (replace(r, consent=replace(
        r.consent, revoked_at=_past(d, r))), R.CONSENT_REVOKED),
    "expired": lambda d, r: (replace(r, consent=replace(
        r.consent, expires_at=_past(d, r))), R.CONSENT_EXPIRED),
    "not yet valid": lambda d, r: (replace(r, consent=replace(
        r.consent, created_at=r.now + d(positive))), R.CONSENT_NOT_YET_VALID),
    "mailbox wide": lambda d, r: (replace(r, mailbox_wide=True), R.CONSENT_NOT_SPECIFIC),
    "another message": lambda d, r: (replace(
        r, message_ids=r.message_ids | {"x1"}), R.CONSENT_NOT_COVERING),
    "unresolved": lambda d, r: (replace(r, resolved=False), R.RESOURCE_UNRESOLVED),
    "no message": lambda d, r: (replace(r, message_ids=frozenset()), R.RESOURCE_REQUIRED),
}  # fmt: skip  # type: ignore[arg-type, union-attr]


def _appr(r: PolicyRequest, **kw: object) -> PolicyRequest:
    assert r.approval is not None
    return replace(r, approval=replace(r.approval, **kw))  # type: ignore[arg-type]


def _outside(draw: st.DrawFn, a: ApprovalFact) -> datetime:
    assert a.time_from is not None
    assert a.time_to is not None
    before = a.time_from - draw(positive)
    return draw(st.sampled_from([before, a.time_to + draw(non_negative)]))


def _uncovered_message(d: st.DrawFn, r: PolicyRequest) -> tuple[PolicyRequest, Reason] | None:
    """A message the approval does not name, dated outside its range (or with no range)."""
    a = r.approval
    if r.mailbox_wide or a is None:
        return None
    when = d(instants) if a.time_from is None else _outside(d, a)
    times = {**r.message_times, "x1": when}
    return replace(r, message_ids=r.message_ids | {"x1"}, message_times=times), (
        R.APPROVAL_NOT_COVERING
    )


def _undated_message(d: st.DrawFn, r: PolicyRequest) -> tuple[PolicyRequest, Reason] | None:
    """With a time range, a message not named and of unknown date must be looked up first."""
    a = r.approval
    if r.mailbox_wide or a is None or a.time_from is None:
        return None
    return replace(r, message_ids=r.message_ids | {"x1"}), R.RESOURCE_UNRESOLVED


def _wider_window(d: st.DrawFn, r: PolicyRequest) -> tuple[PolicyRequest, Reason] | None:
    """A mailbox-wide window reaching past either end of the approved range."""
    if not r.mailbox_wide or r.window is None or r.approval is None:
        return None
    lo, hi = r.window
    assert r.approval.time_from is not None
    assert r.approval.time_to is not None
    window = d(st.sampled_from([
        (r.approval.time_from - d(positive), hi), (lo, r.approval.time_to + d(positive)), None,
    ]))  # fmt: skip
    return replace(r, window=window), R.APPROVAL_NOT_COVERING


def _named_only(change: Breaker) -> Breaker:
    return lambda d, r: None if r.mailbox_wide else change(d, r)


APPROVAL_BREAKERS: dict[str, Breaker] = {
    "other account": lambda d, r: (_appr(r, account_id=_other(r.account_id or "")),
                                   R.APPROVAL_OTHER_ACCOUNT),
    "not requester": lambda d, r: (replace(r, actor=Actor(ActorKind.OPERATOR, _other(
        r.actor.id))), R.APPROVAL_NOT_REQUESTER),
    "other purpose": lambda d, r: (replace(r, purpose=next(
        p for p in CASEWORK if p is not r.purpose)), R.APPROVAL_PURPOSE_MISMATCH),
    "no case reference": lambda d, r: (_appr(r, has_case_reference=False),
                                       R.APPROVAL_INCOMPLETE),
    "no reason": lambda d, r: (_appr(r, has_reason=False), R.APPROVAL_INCOMPLETE),
    "pending": lambda d, r: (_appr(r, status=ApprovalStatus.PENDING), R.APPROVAL_PENDING),
    "dismissed": lambda d, r: (_appr(r, status=ApprovalStatus.DISMISSED),
                               R.APPROVAL_DISMISSED),
    "self approved": lambda d, r: (_appr(r, decided_by=d(st.sampled_from(
        [r.actor.id, None]))), R.APPROVAL_SELF_APPROVED),
    "expired": lambda d, r: (_appr(r, expires_at=d(st.none() | st.just(_past(d, r)))),
                             R.APPROVAL_EXPIRED),
    "uncovered message": _uncovered_message,
    "undated message": _undated_message,
    "wider window": _wider_window,
    "unresolved": _named_only(lambda d, r: (replace(r, resolved=False), R.RESOURCE_UNRESOLVED)),
    "no message": _named_only(lambda d, r: (replace(r, message_ids=frozenset()),
                                            R.RESOURCE_REQUIRED)),
}  # fmt: skip

DECIDE_BREAKERS: dict[str, Breaker] = {
    "by requester": lambda d, r: (replace(r, actor=Actor(ActorKind.OPERATOR,
        r.approval.requester_id)), R.APPROVAL_BY_REQUESTER),
    "other account": lambda d, r: (_appr(r, account_id=_other(r.account_id or "")),
                                   R.APPROVAL_OTHER_ACCOUNT),
    "other purpose": lambda d, r: (_appr(r, purpose=next(
        p for p in CASEWORK if p is not r.purpose)), R.APPROVAL_PURPOSE_MISMATCH),
    "incomplete": lambda d, r: (_appr(r, **{d(st.sampled_from(
        ["has_case_reference", "has_reason"])): False}), R.APPROVAL_INCOMPLETE),
    "stale": lambda d, r: (_appr(r, created_at=r.now - PENDING_LIMIT - d(positive)),
                           R.APPROVAL_STALE),
    "decided": lambda d, r: (_appr(r, status=d(st.sampled_from(
        [ApprovalStatus.APPROVED, ApprovalStatus.DISMISSED]))), R.APPROVAL_NOT_PENDING),
}  # fmt: skip  # type: ignore[union-attr]

OWNER_BREAKERS: dict[str, Breaker] = {
    "another owner": lambda d, r: (replace(r, account_owner=_other(r.actor.id)),
                                   R.ACTOR_NOT_OWNER),
    "another user": lambda d, r: (replace(r, actor=Actor(ActorKind.USER, _other(r.actor.id))),
                                  R.ACTOR_NOT_OWNER),
    "unknown account": lambda d, r: (replace(r, account_owner=None), R.ACCOUNT_UNKNOWN),
    "no account": lambda d, r: (replace(r, account_id=None), R.ACCOUNT_REQUIRED),
    "a basis": lambda d, r: (replace(r, basis=Basis(d(st.sampled_from(BasisKind)), "b1")),
                             R.BASIS_NOT_ALLOWED),
}  # fmt: skip


# Breakers that apply only to some ways of covering a request (the rest apply to all).
APPROVAL_MODES: dict[str, tuple[str, ...]] = {
    "uncovered message": ("ids", "range"), "undated message": ("range",),
    "wider window": ("wide",), "unresolved": ("ids", "range"), "no message": ("ids", "range"),
}  # fmt: skip
EXAMPLES = settings(max_examples=30, deadline=None)


def _broken(
    data: st.DataObject, req: PolicyRequest, breaker: Breaker
) -> tuple[PolicyRequest, Reason]:
    result = breaker(data.draw, req)
    assume(result is not None)
    assert result is not None
    return result


# Each allowed kind of request: the grant that allows it, its requests (by the fact to break:
# some facts apply only to some ways of covering a request) and the facts that break it.
ONE_FACT_BROKEN = [
    pytest.param(grant, requests(fact), breakers[fact], id=f"{kind}-{fact}")
    for kind, grant, requests, breakers in (
        ("consent", "operator.consented_support", lambda _: consent_requests(), CONSENT_BREAKERS),
        ("approval", "operator.approved_access",
         lambda fact: approval_requests(APPROVAL_MODES.get(fact, MODES)), APPROVAL_BREAKERS),
        ("deciding", "operator.decide_access", lambda _: decide_requests(), DECIDE_BREAKERS),
        ("owner", "user.own_mailbox", lambda _: owner_requests(), OWNER_BREAKERS),
    )
    for fact in sorted(breakers)
]  # fmt: skip


@pytest.mark.parametrize(("grant", "requests", "breaker"), ONE_FACT_BROKEN)
@EXAMPLES
@given(data=st.data())
def test_an_allowed_request_is_denied_for_exactly_the_broken_fact(
    grant: str, requests: st.SearchStrategy[PolicyRequest], breaker: Breaker, data: st.DataObject
) -> None:
    """An allowed request, with one fact broken, is denied by the same grant for just that fact."""
    req = data.draw(requests)
    assert decide(req) == Allow(grant)
    broken, reason = _broken(data, req, breaker)
    assert decide(broken) == Deny(grant, (reason,))


@settings(max_examples=100, deadline=None)
@given(owner_requests(), st.sampled_from(sorted(ALLOWED_PURPOSES - {Purpose.USER_FEATURE})))
def test_the_owner_has_no_other_purpose(req: PolicyRequest, purpose: Purpose) -> None:
    """The owner's allowed operation under any other permitted purpose is not permitted."""
    assert decide(replace(req, purpose=purpose)) == Deny(DEFAULT_RULE, (R.PURPOSE_NOT_PERMITTED,))


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(owner_requests(), consent_requests(), approval_requests(), decide_requests()),
    st.sampled_from(sorted(FORBIDDEN_PURPOSES)),
)
def test_a_forbidden_purpose_is_never_allowed(req: PolicyRequest, purpose: Purpose) -> None:
    """Any allowed request turned to a forbidden purpose is refused by the prohibition first."""
    verdict = decide(replace(req, purpose=purpose))
    assert isinstance(verdict, Deny)
    assert verdict.rule == PROHIBITION_RULE
    assert verdict.reasons[0] is R.PURPOSE_FORBIDDEN


@settings(max_examples=100, deadline=None)
@given(consent_requests(), st.frozensets(st.sampled_from(["x1", "x2", "x3"]), min_size=1))
def test_a_consent_never_opens_another_message(req: PolicyRequest, more: frozenset[str]) -> None:
    """An allowed consent-based read that adds messages the consent does not name is denied."""
    assert decide(replace(req, message_ids=req.message_ids | more)) == Deny(
        "operator.consented_support", (R.CONSENT_NOT_COVERING,)
    )


@settings(max_examples=100, deadline=None)
@given(consent_requests(), non_negative, st.booleans())
def test_expired_or_revoked_consent_never_allows(
    req: PolicyRequest, ago: timedelta, revoke: bool
) -> None:
    """A consent that expired or was revoked at or before now denies for exactly that."""
    assert req.consent is not None
    if revoke:
        field, reason = "revoked_at", R.CONSENT_REVOKED
    else:
        field, reason = "expires_at", R.CONSENT_EXPIRED
    dead = replace(req, consent=replace(req.consent, **{field: req.now - ago}))
    assert decide(dead) == Deny("operator.consented_support", (reason,))


@settings(max_examples=100, deadline=None)
@given(approval_requests(), st.sampled_from(["expired", "never", *ApprovalStatus]))
def test_dead_approval_never_allows(req: PolicyRequest, death: str) -> None:
    """An approval that expired, has no expiry, or is not approved denies for exactly that."""
    assume(death != ApprovalStatus.APPROVED)
    reason = {
        "expired": R.APPROVAL_EXPIRED, "never": R.APPROVAL_EXPIRED,
        ApprovalStatus.PENDING: R.APPROVAL_PENDING, ApprovalStatus.STALE: R.APPROVAL_STALE,
        ApprovalStatus.DISMISSED: R.APPROVAL_DISMISSED,
    }[death]  # fmt: skip
    if death == "expired":
        dead = _appr(req, expires_at=req.now)
    elif death == "never":
        dead = _appr(req, expires_at=None)
    else:
        dead = _appr(req, status=ApprovalStatus(death))
    assert decide(dead) == Deny("operator.approved_access", (reason,))


@settings(max_examples=100, deadline=None)
@given(decide_requests(), approval_requests())
def test_nobody_approves_their_own_request(decider: PolicyRequest, user: PolicyRequest) -> None:
    """Deciding one's own request is denied; using a self-approved request is denied too."""
    assert decider.approval is not None
    assert user.approval is not None
    own = replace(decider, actor=Actor(ActorKind.OPERATOR, decider.approval.requester_id))
    assert decide(own) == Deny("operator.decide_access", (R.APPROVAL_BY_REQUESTER,))
    self_approved = _appr(user, decided_by=user.approval.requester_id)
    assert decide(self_approved) == Deny("operator.approved_access", (R.APPROVAL_SELF_APPROVED,))
