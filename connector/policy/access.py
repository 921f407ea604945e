"""Building blocks of the gate: the caller's context, counters, and one access's identity."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from audit.event import IDENTIFIER, Actor, Basis, ResourceRef, Source
from audit.vocab import Action, Purpose, ResourceKind


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who is asking, why, and for which request; the web layer builds one per call."""

    actor: Actor
    purpose: Purpose
    request_id: str | None = None
    source: Source = field(default_factory=Source)
    support_case: str | None = None  # the case an operator works, for case-named consents


@dataclass(slots=True)
class GateStats:
    """Counters the metrics endpoint reads. `policy_violations` counts forbidden purposes."""

    decisions: int = 0
    allowed: int = 0
    denied: int = 0
    policy_violations: int = 0
    audit_failures: int = 0
    gmail_errors: int = 0
    usage_errors: int = 0


def query_hash(key: bytes, query: str) -> ResourceRef:
    """A keyed hash of a search query: correlatable by whoever holds the key, never readable."""
    digest = hmac.new(key, query.encode("utf-8"), hashlib.sha256).hexdigest()
    return ResourceRef(ResourceKind.QUERY, digest)


def error_code(exc: BaseException) -> str:
    """Gmail's reason code (e.g. rateLimitExceeded) when present, else the error's class name."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and IDENTIFIER.fullmatch(reason):
        return reason
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class Access:
    """One gated access: what its decision event said, which its outcome event repeats."""

    ctx: AccessContext
    action: Action
    account_id: str | None
    basis: Basis | None
    resources: tuple[ResourceRef, ...]
    legal_hold: bool
    now: datetime
    access_id: str
