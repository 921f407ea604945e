"""`audit verify-pack DIR`: an evidence pack's signature, its files, its figures against the log.

Offline, the manifest must be signed by a pinned key and every file must have the hash the
manifest lists (nothing missing, nothing added). Against the audit log (`--db`, or
CONNECTOR_AUDIT_DATABASE_URL): the chain must verify (across the audit archive, `--segments`,
when the pack's was: a start dropped behind a signed tombstone is not damage), the event at the
pack's head must still have the head hash the pack names, and the figures recomputed over the
pack's period, up to that head, must equal the pack's. Exit 0 valid, 1 invalid (each problem
said), 3 intact but signed by a key that was not pinned (none given).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from audit.cli_common import record
from audit.cli_target import open_cli_log
from audit.cli_verify import (
    add_trust_arguments,
    add_witness_argument,
    print_check,
    trusted_from,
)
from audit.encoding import parse_time
from audit.event import ResourceRef
from audit.log import AuditLog
from audit.pack import PackCheck, PackStatus, check_pack
from audit.pack_figures import Period, period_figures
from audit.segment_verify import verify_across
from audit.segments import read_archive
from audit.vocab import Action, Outcome, ResourceKind

ARCHIVE_VARIABLE = "CONNECTOR_AUDIT_ARCHIVE_DIR"
HEADLINES = {
    PackStatus.VALID: "VALID: signed by a pinned key; files and figures match the log",
    PackStatus.UNPINNED: "INTACT, NOT AUTHENTICATED: no pinned keys",
    PackStatus.INVALID: "INVALID",
}


def add_verify_pack_parser(sub: Any, add_db: Any) -> None:
    parser = sub.add_parser(
        "verify-pack",
        help="check an evidence pack: signature, file hashes, and its figures against the log",
        description="Check an evidence pack (`connector evidence`): the manifest's signature "
        "against pinned keys, every file's SHA-256, and that its figures equal the ones the "
        "audit log gives for the pack's period.",
    )
    parser.add_argument("pack", type=Path, help="the pack's directory")
    add_db(parser)
    add_trust_arguments(parser)
    add_witness_argument(parser)
    parser.add_argument(
        "--segments",
        type=Path,
        metavar="DIR",
        default=os.environ.get(ARCHIVE_VARIABLE) or None,
        help="the audit archive the pack's chain was verified across (as `audit verify "
        f"--segments`; default ${ARCHIVE_VARIABLE})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _period(manifest: dict[str, Any]) -> Period:
    period = manifest.get("period") or {}
    since, until = period.get("since"), period.get("until")
    return Period(
        None if since is None else parse_time(since), None if until is None else parse_time(until)
    )


def _differences(pack: dict[str, Any], log: dict[str, Any]) -> list[str]:
    problems = []
    for name in sorted(set(pack) | set(log)):
        if pack.get(name) != log.get(name):
            mine, theirs = pack.get(name), log.get(name)
            if isinstance(mine, list) and isinstance(theirs, list):
                detail = f"{len(mine)} entries in the pack, {len(theirs)} in the log"
            else:
                detail = (
                    f"the pack says {json.dumps(mine)[:120]}, the log {json.dumps(theirs)[:120]}"
                )
            problems.append(f"figure {name!r} does not match the audit log: {detail}")
    return problems


def _dropped(seq: int, segments: str | Path | None) -> str:
    """Why the live log may lack `seq`: a segment dropped since the pack was made."""
    if segments is None:
        return ""
    for entry in read_archive(Path(segments)):
        if entry.first <= seq <= entry.last and entry.rows is None and entry.tombstone:
            return (
                f" (dropped since, with events {entry.first}..{entry.last}, at "
                f"{entry.tombstone.get('dropped_at')}: the pack's figures can no longer be "
                "recomputed from the log)"
            )
    return ""


async def _against_log(log: AuditLog, args: argparse.Namespace, check: PackCheck) -> None:
    head = check.manifest.get("audit_log") or {}
    seq, digest = head.get("head_seq"), head.get("head_hash")
    if type(seq) is not int or seq < 1 or not isinstance(digest, str):
        check.fail("the manifest names no audit log head (audit_log.head_seq, head_hash)")
        return
    chain = check.manifest.get("chain") or {}
    across, segments = chain.get("segments"), args.segments
    if across is not None and segments is None:
        check.fail(
            f"the pack's chain was verified across an audit archive ({len(across)} ranges): "
            "pass --segments DIR, that archive, to verify it the same way"
        )
    if segments is None:
        report = await log.verify(trusted=trusted_from(args), witness=args.witness)
    else:
        report = await verify_across(
            log, Path(segments), trusted=trusted_from(args), witness=args.witness
        )
        check.notes += report.notes
    if report.first is not None:
        first = report.first
        check.fail(
            f"the audit log is damaged: seq {first.seq}: {first.damage.value}: {first.detail}"
        )
    found = await log.event_at(seq)
    if found is None:
        check.fail(
            f"the audit log has no event at the pack's head seq {seq}{_dropped(seq, segments)}"
        )
    elif found.hash != digest:
        check.fail(
            f"the event at the pack's head seq {seq} has another hash: the log was rewritten"
        )
    figures = await period_figures(log.store, _period(check.manifest), through_seq=seq)
    pack_figures = check.manifest.get("figures")
    if not isinstance(pack_figures, dict):
        check.fail("the manifest holds no figures")
    else:
        for problem in _differences(pack_figures, figures):
            check.fail(problem)
    if check.status is not PackStatus.INVALID:
        check.notes.append(
            f"the audit log verifies and gives the pack's figures for its period through seq {seq}"
        )
    await record(
        log, args, Action.AUDIT_VERIFIED,
        Outcome.OK if check.status is not PackStatus.INVALID else Outcome.ERROR,
        error_code=None if check.status is not PackStatus.INVALID else "pack_mismatch",
        resources=(ResourceRef(ResourceKind.AUDIT_RANGE, f"1-{seq}"),),
    )  # fmt: skip


async def verify_pack_command(args: argparse.Namespace) -> int:
    trusted = trusted_from(args)
    log = await open_cli_log(args.db)  # a --db that is no audit log is said before the pack
    try:
        check = check_pack(args.pack, trusted)
        if check.manifest:
            await _against_log(log, args, check)
    finally:
        await log.close()
    return print_check(check, f"{HEADLINES[check.status]}: {args.pack}", as_json=args.json)
