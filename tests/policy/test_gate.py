"""The gate writes exactly the expected audit events, fails closed, and guards Gmail."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from audit import vocab
from audit.event import AuditEvent, Basis, ResourceRef
from connector.policy import (
    AccessDenied,
    ApprovalFact,
    AuditUnavailableError,
    ConsentFact,
    Reason,
    plans,
)
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.ports import OutgoingMessage
from connector.testing.mailbox import FakeMailbox, FakeMailboxError
from connector.testing.memory import MemoryBasisFacts, MemoryUsageCounter
from tests.policy.conftest import (
    ACCOUNT,
    HASH_KEY,
    OWNER,
    OWNER_CTX,
    T0,
    RecordingSink,
    approval_fact,
    consent_fact,
    ctx,
)

M = vocab.ResourceKind.MESSAGE
OPERATOR = ctx(vocab.ActorKind.OPERATOR, "op1", vocab.Purpose.CONSENTED_SUPPORT)


def consent(ids: set[str], **changes: object) -> ConsentFact:
    return consent_fact(ids, T0 - timedelta(hours=1), T0 + timedelta(days=7), **changes)


def approval(**changes: object) -> ApprovalFact:
    return approval_fact(
        vocab.Purpose.LEGAL, T0 - timedelta(days=1), T0 + timedelta(days=1), **changes
    )


def summary(sink: RecordingSink) -> list[tuple[object, ...]]:
    return [
        (e.action, e.phase, e.decision, e.outcome, e.reasons, e.severity, e.legal_hold)
        for e in sink.events
    ]


def allowed_then_ok(sink: RecordingSink, action: vocab.Action) -> tuple[AuditEvent, AuditEvent]:
    """The two events of an allowed call that worked: DECISION (allow, pending) then OUTCOME
    (allow, ok), both under `action` and one access id."""
    decision, outcome = sink.events
    assert [(e.action, e.phase, e.decision, e.outcome) for e in sink.events] == [
        (action, vocab.Phase.DECISION, vocab.Decision.ALLOW, vocab.Outcome.PENDING),
        (action, vocab.Phase.OUTCOME, vocab.Decision.ALLOW, vocab.Outcome.OK),
    ]
    assert decision.access_id == outcome.access_id
    return decision, outcome


async def test_owner_read_writes_decision_then_outcome(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """An owner's read: DECISION (allow, pending) then OUTCOME (ok), one access id, then data."""
    message = await gate.run(OWNER_CTX, plans.message(ACCOUNT, "a1", "full"))
    assert message["id"] == "a1"
    decision, outcome = allowed_then_ok(sink, vocab.Action.GMAIL_MESSAGE_READ)
    assert decision.purpose is vocab.Purpose.USER_FEATURE
    assert decision.basis is None
    assert decision.resources == (ResourceRef(M, "a1"),)
    assert outcome.resources == (ResourceRef(M, "a1"), ResourceRef(vocab.ResourceKind.THREAD, "a1"))
    assert decision.reasons == ()
    assert decision.severity is vocab.Severity.INFO
    assert decision.account_id == ACCOUNT
    assert decision.request_id == "req1"
    assert not decision.legal_hold
    assert mailbox.calls == [("get_message", ACCOUNT)]


async def test_forbidden_purpose_is_refused_loudly_and_counted(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """Advertising is denied with severity HIGH, counted, and Gmail is never called."""
    with pytest.raises(AccessDenied) as denied:
        await gate.run(
            ctx(vocab.ActorKind.USER, OWNER, vocab.Purpose.ADVERTISING),
            plans.message(ACCOUNT, "a1"),
        )
    assert Reason.PURPOSE_FORBIDDEN in denied.value.reasons
    assert summary(sink) == [
        (vocab.Action.GMAIL_MESSAGE_READ, vocab.Phase.DECISION, vocab.Decision.DENY,
         vocab.Outcome.DENIED, (Reason.PURPOSE_FORBIDDEN,), vocab.Severity.HIGH, False),
    ]  # fmt: skip
    assert gate.stats.policy_violations == 1
    assert mailbox.calls == []


async def test_other_users_mailbox_is_denied(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """A user reading another person's account is denied (HIGH) without touching Gmail."""
    with pytest.raises(AccessDenied):
        await gate.run(
            ctx(vocab.ActorKind.USER, "user2", vocab.Purpose.USER_FEATURE), plans.profile(ACCOUNT)
        )
    assert sink.events[0].reasons == (Reason.ACTOR_NOT_OWNER,)
    assert sink.events[0].severity is vocab.Severity.HIGH
    assert mailbox.calls == []


async def test_audit_unavailable_before_decision_means_no_gmail_call(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """If the decision cannot be recorded, the access fails and Gmail is never called."""
    sink.fail = True
    with pytest.raises(AuditUnavailableError):
        await gate.run(OWNER_CTX, plans.message(ACCOUNT, "a1"))
    assert mailbox.calls == []
    assert gate.stats.audit_failures == 1


async def test_audit_unavailable_for_outcome_means_no_data(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """If the outcome cannot be recorded, the data fetched is not returned."""
    sink.fail_after = 1
    with pytest.raises(AuditUnavailableError):
        await gate.run(OWNER_CTX, plans.message(ACCOUNT, "a1"))
    assert mailbox.calls == [("get_message", ACCOUNT)]
    assert [e.phase for e in sink.events] == [vocab.Phase.DECISION]


async def test_gmail_error_is_recorded_with_its_code(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox, usage: MemoryUsageCounter
) -> None:
    """A failing Gmail call appends OUTCOME error with Gmail's reason code and re-raises."""
    mailbox.fail_next = FakeMailboxError(429, "rateLimitExceeded")
    with pytest.raises(FakeMailboxError):
        await gate.run(OWNER_CTX, plans.labels(ACCOUNT))
    assert [(e.phase, e.outcome, e.error_code) for e in sink.events] == [
        (vocab.Phase.DECISION, vocab.Outcome.PENDING, None),
        (vocab.Phase.OUTCOME, vocab.Outcome.ERROR, "rateLimitExceeded"),
    ]
    counts = await usage.counts(T0.date(), T0.date())
    assert [(c.operation, c.count, c.error_count) for c in counts] == [("metadata.read", 1, 1)]


async def test_search_records_keyed_hash_never_the_query(gate: Gate, sink: RecordingSink) -> None:
    """A search stores HMAC(key, query) as a QUERY resource; the text appears nowhere."""
    result = await gate.run(OWNER_CTX, plans.message_list(ACCOUNT, query="from:alice secret plans"))
    digest = hmac.new(HASH_KEY, b"from:alice secret plans", hashlib.sha256).hexdigest()
    decision, outcome = sink.events
    assert decision.action is vocab.Action.GMAIL_MESSAGE_LIST
    assert decision.resources == (ResourceRef(vocab.ResourceKind.QUERY, digest),)
    listed = {ResourceRef(M, m["id"]) for m in result["messages"]}
    assert listed <= set(outcome.resources)
    assert "secret" not in repr(sink.events)


async def test_operator_with_consent_reads_named_message_only(
    gate: Gate, sink: RecordingSink, facts: MemoryBasisFacts, mailbox: FakeMailbox
) -> None:
    """Consent for a1 lets the operator read a1 (basis recorded) and never b1."""
    facts.consents["c1"] = consent({"a1"})
    basis = Basis(vocab.BasisKind.CONSENT, "c1")
    await gate.run(OPERATOR, plans.message(ACCOUNT, "a1", "full", basis))
    with pytest.raises(AccessDenied) as denied:
        await gate.run(OPERATOR, plans.message(ACCOUNT, "b1", "full", basis))
    assert denied.value.reasons == (Reason.CONSENT_NOT_COVERING,)
    assert [(e.phase, e.decision, e.basis) for e in sink.events] == [
        (vocab.Phase.DECISION, vocab.Decision.ALLOW, basis),
        (vocab.Phase.OUTCOME, vocab.Decision.ALLOW, basis),
        (vocab.Phase.DECISION, vocab.Decision.DENY, basis),
    ]
    assert mailbox.calls == [("get_message", ACCOUNT)]


async def test_revoked_consent_denies(
    gate: Gate, facts: MemoryBasisFacts, mailbox: FakeMailbox, sink: RecordingSink
) -> None:
    """A revoked consent opens nothing."""
    facts.consents["c1"] = consent({"a1"}, revoked_at=T0 - timedelta(minutes=1))
    with pytest.raises(AccessDenied) as denied:
        await gate.run(
            OPERATOR, plans.message(ACCOUNT, "a1", "full", Basis(vocab.BasisKind.CONSENT, "c1"))
        )
    assert denied.value.reasons == (Reason.CONSENT_REVOKED,)
    assert mailbox.calls == []


async def test_operator_thread_needs_every_member_covered(
    gate: Gate, sink: RecordingSink, facts: MemoryBasisFacts, mailbox: FakeMailbox
) -> None:
    """Consent for one of two thread members: members resolved (ids only), then denied."""
    facts.consents["c1"] = consent({"a1"})
    with pytest.raises(AccessDenied) as denied:
        await gate.run(
            OPERATOR, plans.thread(ACCOUNT, "a1", "full", Basis(vocab.BasisKind.CONSENT, "c1"))
        )
    assert denied.value.reasons == (Reason.CONSENT_NOT_COVERING,)
    assert mailbox.calls == [("get_thread", ACCOUNT)]  # the ids-only resolution, nothing more
    (decision,) = sink.events
    assert decision.resources == (
        ResourceRef(vocab.ResourceKind.THREAD, "a1"), ResourceRef(M, "a1"), ResourceRef(M, "a2"),
    )  # fmt: skip


async def test_operator_thread_fully_covered_is_returned(
    gate: Gate, sink: RecordingSink, facts: MemoryBasisFacts, mailbox: FakeMailbox
) -> None:
    """Consent covering every member opens the thread; both events list all members."""
    facts.consents["c1"] = consent({"a1", "a2"})
    thread = await gate.run(
        OPERATOR, plans.thread(ACCOUNT, "a1", "full", Basis(vocab.BasisKind.CONSENT, "c1"))
    )
    assert [m["id"] for m in thread["messages"]] == ["a1", "a2"]
    assert [e.phase for e in sink.events] == [vocab.Phase.DECISION, vocab.Phase.OUTCOME]
    assert {ResourceRef(M, "a1"), ResourceRef(M, "a2")} <= set(sink.events[0].resources)


async def test_thread_growing_after_decision_is_withheld(
    gate: Gate, sink: RecordingSink, facts: MemoryBasisFacts, mailbox: FakeMailbox
) -> None:
    """A message added between resolution and fetch is caught and the thread is withheld."""
    facts.consents["c1"] = consent({"a1", "a2"})
    real = mailbox.get_thread
    calls = 0

    async def racing(account_id: str, thread_id: str, *, fmt: str = "full") -> dict[str, object]:
        nonlocal calls
        calls += 1
        if calls == 2:
            mailbox.add_message(ACCOUNT, "a3", thread_id="a1", internal_date_ms=1_740_000_200_000)
        return await real(account_id, thread_id, fmt=fmt)

    mailbox.get_thread = racing  # type: ignore[method-assign]
    with pytest.raises(AccessDenied):
        await gate.run(
            OPERATOR, plans.thread(ACCOUNT, "a1", "full", Basis(vocab.BasisKind.CONSENT, "c1"))
        )
    assert [(e.phase, e.decision, e.outcome) for e in sink.events] == [
        (vocab.Phase.DECISION, vocab.Decision.ALLOW, vocab.Outcome.PENDING),
        (vocab.Phase.OUTCOME, vocab.Decision.DENY, vocab.Outcome.DENIED),
    ]
    assert sink.events[1].reasons == (Reason.CONSENT_NOT_COVERING,)


async def test_legal_hold_approval_marks_events_and_bounds_listing(
    gate: Gate, sink: RecordingSink, facts: MemoryBasisFacts, mailbox: FakeMailbox
) -> None:
    """Time-range legal approval: listing bounded by after:/before:; events carry legal_hold."""
    start, end = datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)
    facts.approvals["r1"] = approval(time_from=start, time_to=end, legal_hold=True)
    op_ctx = ctx(vocab.ActorKind.OPERATOR, "op1", vocab.Purpose.LEGAL)
    basis = Basis(vocab.BasisKind.ACCESS_REQUEST, "r1")
    await gate.run(op_ctx, plans.message_list(ACCOUNT, basis=basis))
    assert mailbox.last_query == f"after:{int(start.timestamp())} before:{int(end.timestamp())}"
    # a1 is dated 2025-02-19 (inside); b1 2023-11-14 (outside): resolved by date, then decided.
    await gate.run(op_ctx, plans.message(ACCOUNT, "a1", "full", basis))
    with pytest.raises(AccessDenied) as denied:
        await gate.run(op_ctx, plans.message(ACCOUNT, "b1", "full", basis))
    assert denied.value.reasons == (Reason.APPROVAL_NOT_COVERING,)
    assert all(e.legal_hold for e in sink.events)
    assert all(e.basis == basis for e in sink.events)


async def test_attachment_outcome_is_recorded_before_bytes_flow(
    gate: Gate, sink: RecordingSink
) -> None:
    """The OUTCOME event exists before the caller sees the first byte."""
    stream = await gate.stream(OWNER_CTX, plans.attachment(ACCOUNT, "a1", "att1"))
    assert [e.phase for e in sink.events] == [vocab.Phase.DECISION, vocab.Phase.OUTCOME]
    data = b"".join([chunk async for chunk in stream])
    assert data == b"0123456789"
    assert sink.events[0].resources == (
        ResourceRef(M, "a1"), ResourceRef(vocab.ResourceKind.ATTACHMENT, "att1"),
    )  # fmt: skip


async def test_send_records_sent_ids(gate: Gate, sink: RecordingSink) -> None:
    """Sending records the new message and thread ids, never the message itself."""
    sent = await gate.run(
        OWNER_CTX,
        plans.send(ACCOUNT, OutgoingMessage(raw=b"Subject: hi\r\n\r\nbody", message_id="<x@c>")),
    )
    decision, outcome = sink.events
    assert decision.action is vocab.Action.GMAIL_MESSAGE_SEND
    assert outcome.resources == (
        ResourceRef(M, sent["id"]), ResourceRef(vocab.ResourceKind.THREAD, sent["threadId"]),
    )  # fmt: skip


async def test_drafts_flow_for_owner_only(gate: Gate, sink: RecordingSink) -> None:
    """The owner creates, reads, sends a draft; an operator cannot even list drafts."""
    draft = await gate.run(OWNER_CTX, plans.draft_create(ACCOUNT, OutgoingMessage(b"x", "<d@c>")))
    await gate.run(OWNER_CTX, plans.draft(ACCOUNT, draft["id"]))
    await gate.run(OWNER_CTX, plans.draft_send(ACCOUNT, draft["id"]))
    with pytest.raises(AccessDenied):
        await gate.run(OPERATOR, plans.draft_list(ACCOUNT))
    actions = [e.action for e in sink.events if e.phase is vocab.Phase.OUTCOME]
    assert actions == [
        vocab.Action.GMAIL_DRAFT_CREATE,
        vocab.Action.GMAIL_DRAFT_READ,
        vocab.Action.GMAIL_DRAFT_SEND,
    ]


async def test_aggregates_are_k_anonymous_and_audited(
    gate: Gate, sink: RecordingSink, usage: MemoryUsageCounter
) -> None:
    """Groups of at least k accounts are summed; smaller ones suppressed; no identifiers."""
    day = T0.date()
    for n in range(5):
        await usage.increment(f"acct{n}", day, "content.read", error=n == 0)
    await usage.increment("acct0", day, "message.send", error=False)
    report = await gate.aggregates(
        ctx(vocab.ActorKind.OPERATOR, "op1", vocab.Purpose.AGGREGATE_OPS), day, day
    )
    assert [(r.operation, r.count, r.error_count) for r in report.rows] == [("content.read", 5, 1)]
    assert report.suppressed_groups == 1
    assert "acct" not in repr(report)
    assert [(e.action, e.account_id, e.outcome) for e in sink.events] == [
        (vocab.Action.AGGREGATE_READ, None, vocab.Outcome.PENDING),
        (vocab.Action.AGGREGATE_READ, None, vocab.Outcome.OK),
    ]


async def test_gate_refuses_to_run_without_hash_key(
    mailbox: FakeMailbox, sink: RecordingSink, facts: MemoryBasisFacts
) -> None:
    """No hash key, no gate: an unkeyed query hash could be reversed by guessing."""
    with pytest.raises(ValueError, match="hash key"):
        Gate(mailbox, Recorder(sink), None, facts, MemoryUsageCounter(), hash_key=b"")  # type: ignore[arg-type]


async def test_replayed_send_is_audited_without_calling_gmail_or_counting(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox, usage: MemoryUsageCounter
) -> None:
    """A client's retry of a send writes DECISION + OUTCOME under its own action; no Gmail call."""
    sent = {"id": "b7", "threadId": "b1", "labelIds": ["SENT"]}
    assert await gate.run(OWNER_CTX, plans.send_replayed(ACCOUNT, sent)) == sent
    _, outcome = allowed_then_ok(sink, vocab.Action.GMAIL_MESSAGE_SEND_REPLAYED)
    assert ResourceRef(M, "b7") in outcome.resources
    assert mailbox.calls == []
    assert await usage.counts(T0.date(), T0.date()) == []


async def test_replayed_send_by_another_user_is_denied(
    gate: Gate, sink: RecordingSink, mailbox: FakeMailbox
) -> None:
    """A replay is decided like a send: someone else's mailbox is refused and recorded."""
    with pytest.raises(AccessDenied):
        await gate.run(
            ctx(vocab.ActorKind.USER, "mallory", vocab.Purpose.USER_FEATURE),
            plans.send_replayed(ACCOUNT, {"id": "b7"}),
        )
    assert [(e.action, e.decision) for e in sink.events] == [
        (vocab.Action.GMAIL_MESSAGE_SEND_REPLAYED, vocab.Decision.DENY)
    ]
    assert mailbox.calls == []
