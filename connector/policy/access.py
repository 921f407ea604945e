"""Building blocks of the gate: the caller's context, counters, and the two audit events."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from audit.event import IDENTIFIER, Actor, AuditEvent, Basis, ResourceRef, Source
from audit.vocab import Action, Decision, Outcome, Phase, Purpose, ResourceKind, Severity
from connector.policy.rules import Verdict, severity
from connector.policy.vocab import Reason

MAX_EVENT_RESOURCES = 1000  # audit.event.MAX_RESOURCES


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
    """One gated access: what the decision event said, reused for the outcome event."""

    ctx: AccessContext
    action: Action
    account_id: str | None
    basis: Basis | None
    resources: tuple[ResourceRef, ...]
    legal_hold: bool
    now: datetime
    access_id: str

    def decision_event(self, verdict: Verdict, *, error: str | None = None) -> AuditEvent:
        return AuditEvent(
            actor=self.ctx.actor,
            action=self.action,
            decision=Decision.ALLOW if verdict.allowed else Decision.DENY,
            outcome=Outcome.PENDING if verdict.allowed else Outcome.DENIED,
            account_id=self.account_id,
            purpose=self.ctx.purpose,
            basis=self.basis,
            resources=self.resources[:MAX_EVENT_RESOURCES],
            reasons=tuple(verdict.reasons),
            phase=Phase.DECISION,
            severity=severity(verdict),
            error_code=error,
            request_id=self.ctx.request_id,
            legal_hold=self.legal_hold,
            source=self.ctx.source,
            access_id=self.access_id,
            time=self.now,
        )

    def outcome_event(
        self,
        now: datetime,
        *,
        extra: tuple[ResourceRef, ...] = (),
        error: str | None = None,
        denied: tuple[Reason, ...] = (),
    ) -> AuditEvent:
        if denied:
            decision, outcome = Decision.DENY, Outcome.DENIED
        else:
            decision, outcome = Decision.ALLOW, Outcome.ERROR if error else Outcome.OK
        merged = tuple(dict.fromkeys(self.resources + extra))
        return AuditEvent(
            actor=self.ctx.actor,
            action=self.action,
            decision=decision,
            outcome=outcome,
            account_id=self.account_id,
            purpose=self.ctx.purpose,
            basis=self.basis,
            resources=merged[:MAX_EVENT_RESOURCES],
            reasons=tuple(denied),
            phase=Phase.OUTCOME,
            severity=Severity.WARNING if denied else Severity.INFO,
            error_code=error,
            access_id=self.access_id,
            request_id=self.ctx.request_id,
            legal_hold=self.legal_hold,
            source=self.ctx.source,
            time=now,
        )
