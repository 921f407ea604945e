"""Audit events told in words a mailbox owner understands ('Who accessed my mail').

Closed tables over the audit vocabularies: a value missing here is shown by its code, never
guessed at, and a test checks every action a person other than the owner can cause has words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from audit.records import StoredEvent
from audit.vocab import Action, ActorKind, BasisKind, Decision, Outcome, Phase, Purpose

WHO: Mapping[ActorKind, str] = {
    ActorKind.OPERATOR: "Support staff member",
    ActorKind.REVIEWER: "Security reviewer",
    ActorKind.ADMIN: "Administrator",
    ActorKind.SERVICE: "The connector, automatically,",
    ActorKind.SYSTEM: "The connector itself",
    ActorKind.USER: "Platform user",
}

DID: Mapping[Action, str] = {
    Action.GMAIL_MESSAGE_READ: "read a message",
    Action.GMAIL_THREAD_READ: "read a conversation",
    Action.GMAIL_ATTACHMENT_READ: "downloaded an attachment",
    Action.GMAIL_METADATA_READ: "saw who sent a message, its subject and date",
    Action.GMAIL_MESSAGE_LIST: "listed your messages",
    Action.GMAIL_PROFILE_READ: "read your Gmail address",
    Action.GMAIL_LABEL_LIST: "listed your labels",
    Action.GMAIL_SYNC: "checked for new mail",
    Action.API_REQUEST_REFUSED: "tried to open a page or action that their role does not allow",
    Action.CONSENT_LISTED: "looked at the access you granted",
    Action.AGGREGATE_READ: "counted usage across many accounts (no content)",
    Action.ACCOUNT_TOKEN_REFRESHED: "renewed the connection to Gmail",
    Action.ACCOUNT_REFRESH_FAILED: "could not renew the connection to Gmail",
    Action.ACCOUNT_NEEDS_RELINK: "marked the account as needing to be linked again",
    Action.ACCESS_REQUEST_CREATED: "asked for access to your mailbox",
    Action.ACCESS_REQUEST_APPROVED: "approved another staff member's access request",
    Action.ACCESS_REQUEST_DISMISSED: "dismissed an access request",
    Action.ACCOUNT_UNLINKED: "tried to unlink your account",
}

WHY: Mapping[Purpose, str] = {
    Purpose.USER_FEATURE: "for a feature you use",
    Purpose.CONSENTED_SUPPORT: "to help you, with your consent",
    Purpose.SECURITY: "for a security investigation",
    Purpose.LEGAL: "to meet a legal obligation",
    Purpose.AGGREGATE_OPS: "to run the service (counts only)",
}

BASIS: Mapping[BasisKind, str] = {
    BasisKind.CONSENT: "the access you granted",
    BasisKind.ACCESS_REQUEST: "an access request approved by a second staff member",
}


@dataclass(frozen=True, slots=True)
class Told:
    seq: int
    when: str
    who: str
    did: str
    why: str
    basis: str
    result: str
    refused: bool


def _result(decision: Decision, outcome: Outcome) -> str:
    if decision is Decision.DENY:
        return "Refused: nothing was shown"
    if outcome is Outcome.ERROR:
        return "Allowed, but it failed"
    return "Allowed"


# A refused access did not happen: say what was attempted.
TRIED: Mapping[Action, str] = {
    Action.GMAIL_MESSAGE_READ: "tried to read a message",
    Action.GMAIL_THREAD_READ: "tried to read a conversation",
    Action.GMAIL_ATTACHMENT_READ: "tried to download an attachment",
    Action.GMAIL_METADATA_READ: "tried to see who sent a message, its subject and date",
    Action.GMAIL_MESSAGE_LIST: "tried to list your messages",
}


def _did(action: Action, decision: Decision) -> str:
    if decision is Decision.DENY and action in TRIED:
        return TRIED[action]
    return DID.get(action, action.value)


def tell(stored: StoredEvent) -> Told:
    e = stored.event
    basis = "" if e.basis is None else f"{BASIS.get(e.basis.kind, e.basis.kind)} ({e.basis.id[:8]})"
    return Told(
        seq=stored.seq,
        when=e.time.strftime("%Y-%m-%d %H:%M UTC"),
        who=f"{WHO.get(e.actor.kind, e.actor.kind)} {e.actor.id}",
        did=_did(e.action, e.decision),
        why="" if e.purpose is None else WHY.get(e.purpose, e.purpose.value),
        basis=basis or "none",
        result=_result(e.decision, e.outcome),
        refused=e.decision is Decision.DENY,
    )


def by_others(events: list[StoredEvent], owner: str) -> list[Told]:
    """Accesses by anyone but the owner, one line each (a gated access's decision event; its
    outcome event repeats it)."""
    return [
        tell(s) for s in events
        if not (s.event.actor.kind is ActorKind.USER and s.event.actor.id == owner)
        and s.event.phase is not Phase.OUTCOME
    ]  # fmt: skip
