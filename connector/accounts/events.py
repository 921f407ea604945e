"""How the account lifecycle describes itself to the recorder: identifiers and codes only.

Never a token, an e-mail address or a scope URL: features are recorded as `feature:<name>`,
OAuth error codes as identifier-safe reason codes. The recorder (`connector.policy.recorder`)
builds and appends the events; this module only names what happened.
"""

from __future__ import annotations

from collections.abc import Iterable

from audit.event import Actor
from audit.vocab import Action, ActorKind
from connector.accounts.scopes import Feature
from connector.policy.recorder import Change
from connector.policy.vocab import Operation

SYSTEM = Actor(ActorKind.SYSTEM, "connector.accounts")


def actor(user_id: str | None) -> Actor:
    """The platform user acting, or the connector itself when no user is known."""
    return Actor(ActorKind.USER, user_id) if user_id else SYSTEM


def change(
    user_id: str | None,
    action: Action,
    account_id: str | None,
    operation: Operation = Operation.ACCOUNT_LINK,
) -> Change:
    return Change(actor(user_id), operation, action, account_id=account_id)


def feature_reasons(prefix: str, features: Iterable[Feature]) -> tuple[str, ...]:
    return tuple(f"{prefix}:{f.value}" for f in sorted(features))


def reason_code(reason: str) -> str:
    """An OAuth error or failure code as an audit reason code (lower-case identifier alphabet)."""
    cleaned = "".join(c if c.isalnum() or c in "_.:-" else "_" for c in reason.lower())
    return cleaned[:64] or "unknown"
