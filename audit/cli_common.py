"""What every `audit` subcommand shares: exit codes, output, recording its own use."""

from __future__ import annotations

import argparse
import sys

from audit.event import Actor, AuditEvent, ResourceRef
from audit.log import AuditLog
from audit.vocab import Action, ActorKind, Decision, Outcome, Purpose

# 0: success (`verify`: intact, and signed by pinned keys); 1: damage found (or a receipt that
# does not verify); 2: usage error or not an audit log; 3: intact but not authenticated (no
# pinned keys, or none of their checkpoints covers the log).
EXIT_OK, EXIT_DAMAGED, EXIT_USAGE, EXIT_UNAUTHENTICATED = 0, 1, 2, 3
EXIT_CODES_TEXT = (
    "Exit codes: 0 ok (verify: intact and authentic), 1 damage found, 2 usage error or not an "
    "audit log, 3 intact but not authenticated (consistency only: no pinned keys)."
)


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def actor_of(args: argparse.Namespace) -> Actor:
    if getattr(args, "actor", None):
        return Actor(ActorKind.REVIEWER, args.actor)
    return Actor(ActorKind.SYSTEM, "audit-cli")


async def record(
    log: AuditLog,
    args: argparse.Namespace,
    action: Action,
    outcome: Outcome,
    *,
    error_code: str | None = None,
    resources: tuple[ResourceRef, ...] = (),
) -> None:
    """Record this command in the log it works on (queries and exports before any output)."""
    event = AuditEvent(
        actor=actor_of(args),
        action=action,
        decision=Decision.ALLOW,
        outcome=outcome,
        account_id=getattr(args, "account", None),
        purpose=Purpose.SECURITY,
        error_code=error_code,
        resources=resources,
    )
    await log.append(event)
