"""`audit archive` (seal events into a signed segment) and `audit drop-segment` (drop expired
segments from the live log, leaving signed tombstones); see audit.segments."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.cli_args import iso_time
from audit.cli_common import EXIT_OK, err, record
from audit.event import ResourceRef
from audit.log import AuditLog
from audit.segment_archive import archive, drop_expired
from audit.segments import SegmentError
from audit.signing import load_private_key
from audit.vocab import Action, Outcome, ResourceKind

RETENTION_VARIABLE = "CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS"
MAX_RETENTION_DAYS = 36_500


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of days from 1 to {MAX_RETENTION_DAYS}"
        )
    return int(text)


def _retention_default() -> str | None:
    """The service's setting; its 0 (segments never dropped) gives no default here."""
    value = os.environ.get(RETENTION_VARIABLE, "").strip()
    return None if value in ("", "0") else value


def add_segment_parsers(sub: Any, add_db: Callable[[argparse.ArgumentParser], None]) -> None:
    arch = sub.add_parser(
        "archive",
        help="seal the events up to the last checkpoint before a date into a signed segment",
        description="Copy the events after the archive's last segment, through the last "
        "checkpoint signed before --before, into DIR as a rows file and a manifest signed with "
        "the checkpoint key. The live log is not changed.",
    )
    add_db(arch)
    arch.add_argument("--before", type=iso_time, required=True, help="ISO date (UTC if no offset)")
    arch.add_argument("--out", type=Path, required=True, metavar="DIR", help="archive directory")
    arch.add_argument("--key", type=Path, required=True, help="checkpoint signing key (PEM)")

    drop = sub.add_parser(
        "drop-segment",
        help="drop archived segments older than the retention from the live log, leaving "
        "signed tombstones",
        description="Run as the audit tables' owner. Oldest first, every archived segment whose "
        "newest event is older than the retention is checked against its manifest and the live "
        "log, replaced by a signed tombstone in DIR, and deleted from the live log.",
    )
    add_db(drop)
    drop.add_argument("--segments", type=Path, required=True, metavar="DIR")
    drop.add_argument("--key", type=Path, required=True, help="checkpoint signing key (PEM)")
    drop.add_argument(
        "--retention-days",
        type=_days,
        default=_retention_default(),
        help="keep segments this many days after their newest event "
        f"(default ${RETENTION_VARIABLE}, the service's setting; 0 there: never dropped)",
    )
    drop.add_argument("--reason", default="retention expired", help="recorded in the tombstone")


async def archive_command(log: AuditLog, args: argparse.Namespace) -> int:
    key = load_private_key(args.key)
    args.out.mkdir(parents=True, exist_ok=True)
    entry = await archive(log, args.out, args.before, key, datetime.now(UTC))
    span = (ResourceRef(ResourceKind.AUDIT_RANGE, f"{entry.first}-{entry.last}"),)
    await record(log, args, Action.AUDIT_EXPORTED, Outcome.OK, resources=span)
    err(f"archived events {entry.first}..{entry.last} to {entry.rows}")
    return EXIT_OK


async def drop_command(log: AuditLog, args: argparse.Namespace) -> int:
    if args.retention_days is None:
        raise SegmentError(
            f"say how long segments are kept: --retention-days or ${RETENTION_VARIABLE} "
            "(unset or 0: segments are never dropped)"
        )
    days = _days(str(args.retention_days))
    key = load_private_key(args.key)
    try:
        dropped = await drop_expired(
            log, args.segments, key, now=datetime.now(UTC), retention=timedelta(days=days),
            reason=args.reason,
        )  # fmt: skip
    except SegmentError:
        await record(log, args, Action.RETENTION_RUN, Outcome.ERROR, error_code="segment_refused")
        raise
    spans = tuple(ResourceRef(ResourceKind.AUDIT_RANGE, f"{d.first}-{d.last}") for d in dropped)
    await record(log, args, Action.RETENTION_RUN, Outcome.OK, resources=spans)
    for item in dropped:
        err(f"dropped events {item.first}..{item.last} ({item.count}); tombstone written")
    return EXIT_OK


SEGMENT_HANDLERS: dict[str, Callable[[AuditLog, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "archive": archive_command,
    "drop-segment": drop_command,
}
