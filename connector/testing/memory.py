"""In-memory adapters of the policy ports: real code for tests, the benchmark and the demo."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from audit.event import AppendReceipt, AuditEvent
from connector.policy.facts import ApprovalFact, ConsentFact
from connector.policy.ports import UsageCount


class StaticAccountOwners:
    def __init__(self, owners: Mapping[str, str] | None = None) -> None:
        self.owners: dict[str, str] = dict(owners or {})

    async def owner_of(self, account_id: str) -> str | None:
        return self.owners.get(account_id)


class MemoryBasisFacts:
    def __init__(self) -> None:
        self.consents: dict[str, ConsentFact] = {}
        self.approvals: dict[str, ApprovalFact] = {}

    async def consent(self, consent_id: str) -> ConsentFact | None:
        return self.consents.get(consent_id)

    async def approval(self, request_id: str) -> ApprovalFact | None:
        return self.approvals.get(request_id)


class MemoryUsageCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, date, str], tuple[int, int]] = {}

    async def increment(self, account_id: str, day: date, operation: str, *, error: bool) -> None:
        key = (account_id, day, operation)
        count, errors = self._counts.get(key, (0, 0))
        self._counts[key] = (count + 1, errors + int(error))

    async def counts(self, start: date, end: date) -> list[UsageCount]:
        return [
            UsageCount(account, day, operation, count, errors)
            for (account, day, operation), (count, errors) in sorted(self._counts.items())
            if start <= day <= end
        ]


class DiscardingSink:
    """An AuditSink that keeps nothing: only for measuring the gate's own overhead."""

    def __init__(self) -> None:
        self.seq = 0

    async def append(self, event: AuditEvent) -> AppendReceipt:
        self.seq += 1
        return AppendReceipt(seq=self.seq, event_id=event.event_id, hash="0" * 64)
