"""Fixtures for the policy tests: a real recording audit sink, a clock, owners, the gate."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from audit.event import Actor, AppendReceipt, AuditEvent
from audit.vocab import ActorKind, Purpose
from connector.policy.access import AccessContext
from connector.policy.facts import ApprovalFact, ApprovalStatus, ConsentFact, GranteeKind
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.testing.mailbox import FakeMailbox
from connector.testing.memory import MemoryBasisFacts, MemoryUsageCounter, StaticAccountOwners
from tests.conftest import Clock

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HASH_KEY = b"test-hash-key"
ACCOUNT = "acct1"
OWNER = "user1"


class RecordingSink:
    """An AuditSink that keeps events in order with a real hash chain; can be made to fail."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.head = "0" * 64
        self.fail = False
        self.fail_after: int | None = None  # fail once this many events are stored

    async def append(self, event: AuditEvent) -> AppendReceipt:
        if self.fail or (self.fail_after is not None and len(self.events) >= self.fail_after):
            raise ConnectionError("audit store unavailable")
        self.head = hashlib.sha256((self.head + repr(event)).encode()).hexdigest()
        self.events.append(event)
        return AppendReceipt(seq=len(self.events), event_id=event.event_id, hash=self.head)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def owners() -> StaticAccountOwners:
    return StaticAccountOwners({ACCOUNT: OWNER, "acct2": "user2"})


@pytest.fixture
def facts() -> MemoryBasisFacts:
    return MemoryBasisFacts()


@pytest.fixture
def mailbox() -> FakeMailbox:
    box = FakeMailbox()
    box.add_message(ACCOUNT, "a1", thread_id="a1", internal_date_ms=1_740_000_000_000)
    box.add_message(ACCOUNT, "a2", thread_id="a1", internal_date_ms=1_740_000_100_000)
    box.add_message(ACCOUNT, "b1", thread_id="b1", internal_date_ms=1_700_000_000_000)
    box.add_attachment(ACCOUNT, "a1", "att1", b"0123456789")
    return box


@pytest.fixture
def usage() -> MemoryUsageCounter:
    return MemoryUsageCounter()


@pytest.fixture
def gate(
    mailbox: FakeMailbox,
    sink: RecordingSink,
    owners: StaticAccountOwners,
    facts: MemoryBasisFacts,
    usage: MemoryUsageCounter,
    clock: Clock,
) -> Gate:
    recorder = Recorder(sink, clock)
    return Gate(mailbox, recorder, owners, facts, usage, hash_key=HASH_KEY, clock=clock)


def ctx(kind: ActorKind, actor_id: str, purpose: Purpose, **kw: object) -> AccessContext:
    return AccessContext(Actor(kind, actor_id), purpose, request_id="req1", **kw)  # type: ignore[arg-type]


OWNER_CTX = ctx(ActorKind.USER, OWNER, Purpose.USER_FEATURE)


def consent_fact(
    message_ids: Iterable[str], created_at: datetime, expires_at: datetime, **changes: Any
) -> ConsentFact:
    """Consent c1: the owner of ACCOUNT lets operator op1 view `message_ids` (then `changes`)."""
    fact = ConsentFact(
        "c1", ACCOUNT, OWNER, GranteeKind.OPERATOR, "op1", frozenset(message_ids), created_at,
        expires_at,
    )  # fmt: skip
    return replace(fact, **changes)


def approval_fact(
    purpose: Purpose, created_at: datetime, expires_at: datetime | None, **changes: Any
) -> ApprovalFact:
    """Access request r1 on ACCOUNT: operator op1 asked with a case reference and a reason, op2
    approved it until `expires_at` (then `changes`)."""
    fact = ApprovalFact(
        "r1", ACCOUNT, "op1", purpose, ApprovalStatus.APPROVED, created_at,
        has_case_reference=True, has_reason=True, decided_by="op2", expires_at=expires_at,
    )  # fmt: skip
    return replace(fact, **changes)
