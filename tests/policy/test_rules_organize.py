"""Organizing mail and settings (#14) are the owner's alone: a human with a basis reads only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.event import Actor, Basis
from audit.vocab import ActorKind, BasisKind, Purpose
from connector.policy import Operation, PolicyRequest, Reason, decide
from tests.policy.conftest import approval_fact, consent_fact

NOW = datetime(2026, 12, 1, tzinfo=UTC)
WRITES = (Operation.MESSAGE_MODIFY, Operation.LABEL_WRITE, Operation.SETTINGS_WRITE)
OPERATOR = Actor(ActorKind.OPERATOR, "op1")
CONSENT = consent_fact({"m1"}, NOW - timedelta(hours=1), NOW + timedelta(days=1))
APPROVAL = approval_fact(
    Purpose.SECURITY,
    NOW - timedelta(hours=2),
    NOW + timedelta(hours=4),
    message_ids=frozenset({"m1"}),
)


def _req(actor: Actor, op: Operation, purpose: Purpose, **kw: object) -> PolicyRequest:
    return PolicyRequest(actor, op, purpose, NOW, account_id="acct1", account_owner="user1",
                         message_ids=frozenset({"m1"}), **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("op", [*WRITES, Operation.SETTINGS_READ])
def test_owner_may_organize_and_read_settings(op: Operation) -> None:
    """The owner, for the user feature, may modify labels, write labels and use settings."""
    verdict = decide(_req(Actor(ActorKind.USER, "user1"), op, Purpose.USER_FEATURE))
    assert verdict.allowed
    assert verdict.rule == "user.own_mailbox"


@pytest.mark.parametrize("op", WRITES)
def test_another_user_may_not_organize(op: Operation) -> None:
    """Another user is refused as not the owner (a high-severity, cross-account attempt)."""
    verdict = decide(_req(Actor(ActorKind.USER, "user2"), op, Purpose.USER_FEATURE))
    assert not verdict.allowed
    assert Reason.ACTOR_NOT_OWNER in verdict.reasons


@pytest.mark.parametrize("op", WRITES)
def test_operator_with_valid_consent_is_refused_a_modify(op: Operation) -> None:
    """A consent that lets the operator read m1 never lets him change it."""
    read = decide(_req(OPERATOR, Operation.CONTENT_READ, Purpose.CONSENTED_SUPPORT,
                       basis=Basis(BasisKind.CONSENT, "c1"), consent=CONSENT))  # fmt: skip
    assert read.allowed  # the basis is valid ...
    verdict = decide(_req(OPERATOR, op, Purpose.CONSENTED_SUPPORT,
                          basis=Basis(BasisKind.CONSENT, "c1"), consent=CONSENT))  # fmt: skip
    assert not verdict.allowed  # ... and still grants no write
    assert Reason.OPERATION_NOT_PERMITTED in verdict.reasons


@pytest.mark.parametrize("op", WRITES)
def test_operator_with_valid_approval_is_refused_a_modify(op: Operation) -> None:
    """A second-person approval to read m1 for a security case never lets the operator modify."""
    basis = Basis(BasisKind.ACCESS_REQUEST, "r1")
    read = decide(_req(OPERATOR, Operation.CONTENT_READ, Purpose.SECURITY, basis=basis,
                       approval=APPROVAL))  # fmt: skip
    assert read.allowed
    verdict = decide(_req(OPERATOR, op, Purpose.SECURITY, basis=basis, approval=APPROVAL))
    assert not verdict.allowed
    assert Reason.OPERATION_NOT_PERMITTED in verdict.reasons


def test_the_service_may_not_organize() -> None:
    """The connector's own processing reads for the owner's features; it never modifies."""
    verdict = decide(_req(Actor(ActorKind.SERVICE, "sync"), Operation.MESSAGE_MODIFY,
                          Purpose.USER_FEATURE))  # fmt: skip
    assert not verdict.allowed
