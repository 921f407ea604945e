"""Fixtures for the policy tests: a real recording audit sink, a clock, owners, the gate."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from audit.event import Actor, AppendReceipt, AuditEvent
from audit.vocab import ActorKind, Purpose
from connector.policy.access import AccessContext
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
