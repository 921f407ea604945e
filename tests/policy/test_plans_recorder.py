"""Plans are pure values; the recorder and the authority are the one decide-and-record path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit import vocab
from audit.event import Actor, Basis, ResourceRef
from connector.errors import AccessDenied, AuditUnavailableError, PolicyInputError
from connector.policy import plans
from connector.policy.authority import Authority
from connector.policy.recorder import Change, Recorder, is_refusal, tracking
from connector.policy.vocab import Operation, Reason
from connector.ports import OutgoingMessage
from connector.testing.memory import StaticAccountOwners
from tests.conftest import Clock
from tests.policy.conftest import ACCOUNT, OWNER, T0, RecordingSink

USER = Actor(vocab.ActorKind.USER, OWNER)
STRANGER = Actor(vocab.ActorKind.USER, "user2")


def test_plans_describe_reads_without_touching_a_mailbox() -> None:
    """A message plan names the operation, action, resources and the messages a basis covers."""
    basis = Basis(vocab.BasisKind.CONSENT, "c1")
    plan = plans.message(ACCOUNT, "m1", "metadata", basis)
    assert (plan.operation, plan.action) == (
        Operation.METADATA_READ,
        vocab.Action.GMAIL_METADATA_READ,
    )
    assert plan.resources == (ResourceRef(vocab.ResourceKind.MESSAGE, "m1"),)
    assert plan.message_ids == {"m1"}
    assert plan.basis == basis
    assert plan.members is not None
    assert plan.counted
    full = plans.message(ACCOUNT, "m1")
    assert (full.operation, full.action) == (
        Operation.CONTENT_READ,
        vocab.Action.GMAIL_MESSAGE_READ,
    )


def test_a_thread_plan_is_unresolved_until_its_members_are_known() -> None:
    """A thread names no messages up front: the gate must resolve them before a human reads."""
    plan = plans.thread(ACCOUNT, "t1", "full", Basis(vocab.BasisKind.CONSENT, "c1"))
    assert plan.resolved is False
    assert plan.fetched is not None
    assert plan.members is not None
    assert plan.result_refs({"messages": [{"id": "b"}, {"id": "a"}]}) == (
        ResourceRef(vocab.ResourceKind.MESSAGE, "a"),
        ResourceRef(vocab.ResourceKind.MESSAGE, "b"),
    )


def test_a_search_plan_carries_its_query_for_hashing_and_an_unknown_format_is_refused() -> None:
    """The list plan keeps the query for the gate to hash; a format Gmail lacks is input error."""
    plan = plans.message_list(ACCOUNT, query="from:bob", label_ids=("INBOX",))
    assert plan.query == "from:bob"
    assert plan.mailbox_wide
    assert plan.resources == (ResourceRef(vocab.ResourceKind.LABEL, "INBOX"),)
    with pytest.raises(PolicyInputError, match="format must be one of"):
        plans.message(ACCOUNT, "m1", "everything")


def test_a_replayed_send_is_not_counted_and_names_what_was_sent() -> None:
    """Replaying a send answers from the record: not counted as usage, refs of the first send."""
    sent = {"id": "m9", "threadId": "t9"}
    plan = plans.send_replayed(ACCOUNT, sent)
    assert plan.counted is False
    assert plan.action is vocab.Action.GMAIL_MESSAGE_SEND_REPLAYED
    assert plan.resources == (ResourceRef(vocab.ResourceKind.THREAD, "t9"),)
    assert plan.result_refs(sent) == (
        ResourceRef(vocab.ResourceKind.MESSAGE, "m9"),
        ResourceRef(vocab.ResourceKind.THREAD, "t9"),
    )
    fresh = plans.send(ACCOUNT, OutgoingMessage(b"x", "<x@c>"))
    assert fresh.counted
    assert fresh.mailbox_wide


async def test_a_refused_change_is_recorded_high_with_the_policys_reasons() -> None:
    """Someone else revoking a consent: one DENY event, cross-account severity, then raise."""
    sink, clock = RecordingSink(), Clock(T0)
    authority = Authority(Recorder(sink, clock), StaticAccountOwners({ACCOUNT: OWNER}), clock)
    change = Change(
        STRANGER, Operation.CONSENT_REVOKE, vocab.Action.CONSENT_REVOKED, account_id=ACCOUNT
    )
    with pytest.raises(AccessDenied) as denied:
        await authority.authorize(change)
    assert denied.value.reasons == (Reason.ACTOR_NOT_OWNER,)
    [event] = sink.events
    assert (event.decision, event.outcome, event.severity) == (
        vocab.Decision.DENY, vocab.Outcome.DENIED, vocab.Severity.HIGH,
    )  # fmt: skip
    assert (event.phase, event.time) == (vocab.Phase.EVENT, clock.now)


async def test_an_allowed_change_is_recorded_only_when_recorded() -> None:
    """authorize() writes nothing when allowed; record() writes the change (failed: ERROR)."""
    sink, clock = RecordingSink(), Clock(T0)
    authority = Authority(Recorder(sink, clock), StaticAccountOwners({ACCOUNT: OWNER}), clock)
    change = Change(
        USER, Operation.CONSENT_REVOKE, vocab.Action.CONSENT_REVOKED, account_id=ACCOUNT
    )
    await authority.authorize(change)
    assert sink.events == []
    await authority.record(change, reasons=("done",))
    clock.advance(timedelta(seconds=1))
    await authority.record(change, reasons=("again",), failed=True, error_code="boom")
    assert [(e.decision, e.outcome, e.severity, e.reasons) for e in sink.events] == [
        (vocab.Decision.ALLOW, vocab.Outcome.OK, vocab.Severity.INFO, ("done",)),
        (vocab.Decision.ALLOW, vocab.Outcome.ERROR, vocab.Severity.WARNING, ("again",)),
    ]
    assert sink.events[1].error_code == "boom"


async def test_no_purpose_no_grant_and_no_owner_lookup_means_no_owner() -> None:
    """A change without a purpose is refused; an authority without owners knows no account."""
    sink = RecordingSink()
    authority = Authority(Recorder(sink), owners=None)
    unnamed = Change(
        USER, Operation.HISTORY_READ, vocab.Action.CONSENT_LISTED, None, account_id=ACCOUNT
    )
    assert (await authority.verdict(unnamed)).reasons == (Reason.PURPOSE_NOT_PERMITTED,)
    owned = Change(USER, Operation.HISTORY_READ, vocab.Action.CONSENT_LISTED, account_id=ACCOUNT)
    assert Reason.ACCOUNT_UNKNOWN in (await authority.verdict(owned)).reasons


async def test_the_recorder_fails_closed_and_tracks_what_it_appended() -> None:
    """A failed append raises AuditUnavailableError and is not tracked; a durable one is."""
    sink = RecordingSink()
    recorder = Recorder(sink)
    change = Change(USER, Operation.CONSENT_GRANT, vocab.Action.CONSENT_GRANTED, account_id=ACCOUNT)
    with tracking() as seen:
        await recorder.change(change)
        sink.fail = True
        with pytest.raises(AuditUnavailableError):
            await recorder.change(change, failed=True)
    assert [e.outcome for e in seen] == [vocab.Outcome.OK]
    assert not is_refusal(seen[0])
    outside = RecordingSink()
    await Recorder(outside).change(change)  # outside `tracking`: appended, nothing collected
    assert len(outside.events) == 1
    assert len(seen) == 1


def test_is_refusal_names_denials_and_failures() -> None:
    """A DENY decision, a DENIED or ERROR outcome are refusals; an allowed pending step is not."""
    from audit.event import AuditEvent

    def event(decision: vocab.Decision, outcome: vocab.Outcome) -> AuditEvent:
        reasons = ("x",) if decision is vocab.Decision.DENY else ()
        return AuditEvent(USER, vocab.Action.GMAIL_MESSAGE_READ, decision, outcome, reasons=reasons)

    assert is_refusal(event(vocab.Decision.DENY, vocab.Outcome.DENIED))
    assert is_refusal(event(vocab.Decision.ALLOW, vocab.Outcome.ERROR))
    assert is_refusal(event(vocab.Decision.ALLOW, vocab.Outcome.DENIED))
    assert not is_refusal(event(vocab.Decision.ALLOW, vocab.Outcome.PENDING))
    assert not is_refusal(event(vocab.Decision.ALLOW, vocab.Outcome.OK))
