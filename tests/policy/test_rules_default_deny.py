"""Deny by default, as a fuzz: whatever random facts a request carries, nothing outside the
grant table is ever allowed, an allowed user acts on his own mailbox, and an operator's read
always names a basis. (The one-fact-broken properties are in test_rules_properties.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.event import Actor, Basis
from audit.vocab import ActorKind, BasisKind, Purpose
from connector.policy.facts import (
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRequest,
)
from connector.policy.rules import decide
from connector.policy.vocab import Operation
from tests.policy.test_rules_table import ALLOWED, READS

ids = st.sampled_from(["m1", "m2", "m3", "m4"])
people = st.sampled_from(["user1", "user2", "op1", "op2", "sync", "rev1"])
accounts = st.sampled_from(["acct1", "acct2"])
NOW = datetime(2025, 3, 1, tzinfo=UTC)
offsets = st.integers(min_value=-40, max_value=40).map(lambda d: NOW + timedelta(days=d))


@st.composite
def random_requests(draw: st.DrawFn) -> PolicyRequest:
    basis_kind = draw(st.sampled_from([None, BasisKind.CONSENT, BasisKind.ACCESS_REQUEST]))
    consent = st.builds(
        ConsentFact, st.just("c1"), accounts, people, st.sampled_from(GranteeKind),
        people | st.just("case7"), st.frozensets(ids, max_size=3), offsets, offsets,
        st.none() | offsets,
    )  # fmt: skip
    approval = st.builds(
        ApprovalFact, st.just("r1"), accounts, people, st.sampled_from(Purpose),
        st.sampled_from(ApprovalStatus), offsets, st.frozensets(ids, max_size=3),
        st.none() | offsets, st.none() | offsets, st.booleans(), st.booleans(),
        st.none() | people, st.none() | offsets, st.booleans(),
    )  # fmt: skip
    return PolicyRequest(
        actor=Actor(draw(st.sampled_from(ActorKind)), draw(people)),
        operation=draw(st.sampled_from(Operation)), purpose=draw(st.sampled_from(Purpose)),
        now=NOW, account_id=draw(st.none() | accounts), account_owner=draw(st.none() | people),
        message_ids=draw(st.frozensets(ids, max_size=3)), mailbox_wide=draw(st.booleans()),
        resolved=draw(st.booleans()), message_times=draw(st.dictionaries(ids, offsets)),
        window=draw(st.none() | st.tuples(offsets, offsets)),
        basis=None if basis_kind is None else Basis(basis_kind, draw(st.sampled_from(
            ["c1", "r1"]))),
        consent=draw(st.none() | consent), approval=draw(st.none() | approval),
        support_case=draw(st.none() | st.just("case7")),
    )  # fmt: skip


def _in_table(req: PolicyRequest) -> bool:
    kind = {
        ActorKind.USER: "owner", ActorKind.SERVICE: "service", ActorKind.OPERATOR: "operator",
        ActorKind.REVIEWER: "reviewer",
    }.get(req.actor.kind)  # fmt: skip
    return any(
        who == kind and req.operation in ops and req.purpose in purposes
        for who, ops, purposes, _variant, _grant in ALLOWED
    )


@settings(max_examples=500, deadline=None)
@given(random_requests())
def test_nothing_outside_the_table_is_ever_allowed(req: PolicyRequest) -> None:
    """Whatever the facts, only actor/operation/purpose triples in the table can be allowed."""
    verdict = decide(req)
    if verdict.allowed:
        assert _in_table(req)
        if req.actor.kind is ActorKind.USER:
            assert req.account_owner in (req.actor.id, None)
        if req.actor.kind is ActorKind.OPERATOR and req.operation in READS:
            assert req.basis is not None
    else:
        assert verdict.reasons
