"""What the gate and the authority need from the rest of the service, as small protocols.

Each has an in-memory twin in `connector.testing.memory` (real code, used by tests and the
benchmark) and a database-backed adapter (`StoredBasisFacts`, `SqlUsageCounter`, the accounts
table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from connector.policy.facts import ApprovalFact, ConsentFact


class AccountOwners(Protocol):
    async def owner_of(self, account_id: str) -> str | None:
        """The platform user id that linked `account_id`, or None if no such account."""
        ...


class BasisFacts(Protocol):
    async def consent(self, consent_id: str) -> ConsentFact | None: ...

    async def approval(self, request_id: str) -> ApprovalFact | None: ...


@dataclass(frozen=True, slots=True)
class UsageCount:
    account_id: str
    day: date
    operation: str
    count: int
    error_count: int


class UsageCounter(Protocol):
    async def increment(self, account_id: str, day: date, operation: str, *, error: bool) -> None:
        """Add one access (and one error if `error`) to the account/day/operation counter."""
        ...

    async def counts(self, start: date, end: date) -> list[UsageCount]:
        """Every counter with `start <= day <= end`."""
        ...
