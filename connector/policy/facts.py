"""Facts a decision is made on: the request, and the consent/approval records behind a basis.

The policy never fetches anything. Whoever asks (the gate, the authority) resolves these
values first, so `decide()` is a pure function of them and of `now`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from audit.event import Actor, Basis
from audit.vocab import Purpose
from connector.policy.vocab import Operation

CONSENT_DEFAULT_TTL = timedelta(days=7)
CONSENT_MAX_TTL = timedelta(days=30)
# Google's Access Approval dismisses stale requests; so do we, after two weeks.
PENDING_LIMIT = timedelta(days=14)
APPROVAL_MAX_DURATION = timedelta(days=30)

_EMPTY_TIMES: Mapping[str, datetime] = MappingProxyType({})


class GranteeKind(StrEnum):
    OPERATOR = "operator"  # one named staff member
    SUPPORT_CASE = "support_case"  # whoever works the named support case


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DISMISSED = "dismissed"
    STALE = "stale"  # pending longer than PENDING_LIMIT: counts as dismissed


@dataclass(frozen=True, slots=True)
class ConsentFact:
    """An owner's agreement that a grantee may view exactly these messages until `expires_at`."""

    id: str
    account_id: str
    granted_by: str  # the user id that created it; must be the account's owner
    grantee_kind: GranteeKind
    grantee_id: str
    message_ids: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApprovalFact:
    """An operator's access request and, once decided, the second operator's decision."""

    id: str
    account_id: str
    requester_id: str
    purpose: Purpose
    status: ApprovalStatus  # as stored; see `effective_status`
    created_at: datetime
    message_ids: frozenset[str] = frozenset()
    time_from: datetime | None = None  # with time_to: every message dated in [from, to)
    time_to: datetime | None = None
    has_case_reference: bool = False
    has_reason: bool = False
    decided_by: str | None = None
    expires_at: datetime | None = None
    legal_hold: bool = False

    def effective_status(self, now: datetime) -> ApprovalStatus:
        if self.status is ApprovalStatus.PENDING and now - self.created_at > PENDING_LIMIT:
            return ApprovalStatus.STALE
        return self.status

    def covers_time(self, when: datetime) -> bool:
        if self.time_from is None or self.time_to is None:
            return False
        return self.time_from <= when < self.time_to


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One attempted operation, with every fact the decision needs already resolved."""

    actor: Actor
    operation: Operation
    purpose: Purpose
    now: datetime
    account_id: str | None = None
    account_owner: str | None = None  # user id owning `account_id`; None when unknown
    message_ids: frozenset[str] = frozenset()
    # The operation reaches the mailbox beyond named messages (list, search, labels, profile).
    mailbox_wide: bool = False
    # False while a thread's member ids (or a message's date) are still unknown.
    resolved: bool = True
    message_times: Mapping[str, datetime] = field(default_factory=lambda: _EMPTY_TIMES)
    # A mailbox-wide listing the gate has bounded to [from, to) (Gmail after:/before:).
    window: tuple[datetime, datetime] | None = None
    basis: Basis | None = None
    consent: ConsentFact | None = None
    approval: ApprovalFact | None = None
    support_case: str | None = None  # the case an operator is working, for case-named consents
