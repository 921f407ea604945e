"""Audit events of the account lifecycle: identifiers and reason codes only.

Never a token, an e-mail address or a scope URL: features are recorded as `feature:<name>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.event import Actor, AppendReceipt, AuditEvent
from audit.sink import AuditSink
from audit.vocab import Action, ActorKind, Decision, Outcome, Purpose, Severity
from connector.accounts.scopes import Feature

SYSTEM = Actor(ActorKind.SYSTEM, "connector.accounts")


def user(user_id: str) -> Actor:
    return Actor(ActorKind.USER, user_id)


def feature_reasons(prefix: str, features: Iterable[Feature]) -> tuple[str, ...]:
    return tuple(f"{prefix}:{f.value}" for f in sorted(features))


async def record(
    sink: AuditSink,
    actor: Actor,
    action: Action,
    *,
    account_id: str | None,
    reasons: tuple[str, ...] = (),
    failed: bool = False,
    error_code: str | None = None,
) -> AppendReceipt:
    """Append one lifecycle event; any failure propagates so the caller's change rolls back."""
    return await sink.append(
        AuditEvent(
            actor=actor,
            action=action,
            decision=Decision.ALLOW,
            outcome=Outcome.ERROR if failed else Outcome.OK,
            account_id=account_id,
            purpose=Purpose.USER_FEATURE,
            reasons=reasons,
            error_code=error_code,
            severity=Severity.WARNING if failed else Severity.INFO,
        )
    )
