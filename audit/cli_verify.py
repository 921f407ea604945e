"""`audit verify` (the chain, its checkpoints against pinned keys, and what that proves) and
`audit verify-receipt` (a signed receipt, offline, optionally against the log)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from audit.cli_common import (
    EXIT_DAMAGED,
    EXIT_OK,
    EXIT_UNAUTHENTICATED,
    err,
    out,
    record,
)
from audit.cli_target import open_cli_log
from audit.event import ResourceRef
from audit.log import AuditLog
from audit.receipts import ReceiptCheck, ReceiptFormatError, ReceiptStatus, verify_receipt
from audit.signed import SignedCheck, SignedStatus
from audit.signing import load_public_key
from audit.trust import TrustedKeys, load_trusted_keys
from audit.verify import Authenticity, VerifyReport
from audit.verify_parallel import MIN_EVENTS_PER_JOB
from audit.vocab import Action, Outcome, ResourceKind

MAX_JOBS = 256
EXIT_OF = {
    Authenticity.AUTHENTIC: EXIT_OK,
    Authenticity.DAMAGED: EXIT_DAMAGED,
    Authenticity.CONSISTENT_ONLY: EXIT_UNAUTHENTICATED,
}
# A signed document's check (a receipt, an evidence pack): the exit code of its status.
SIGNED_EXIT = {
    SignedStatus.VALID: EXIT_OK,
    SignedStatus.INVALID: EXIT_DAMAGED,
    SignedStatus.UNPINNED: EXIT_UNAUTHENTICATED,
}


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "pinned keys (without any, only consistency is checked and the exit status is 3)"
    )
    group.add_argument(
        "--trusted-keys",
        type=Path,
        action="append",
        metavar="PATH",
        help="file of trusted Ed25519 public keys (PEM) and/or their SHA-256 fingerprints "
        "(hex, one per line); repeatable",
    )
    group.add_argument(
        "--fingerprint",
        action="append",
        metavar="HEX",
        help="trust the key with this SHA-256 fingerprint (`audit pubkey --fingerprint`)",
    )
    group.add_argument(
        "--pubkey", type=Path, action="append", metavar="PEM", help="a trusted public key PEM"
    )


def add_witness_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--witness",
        type=Path,
        metavar="PATH",
        help="witness file (CONNECTOR_AUDIT_WITNESS_FILE): every checkpoint in it must be in "
        "the log with the same hash, and the log must not be shorter",
    )


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= jobs <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"{jobs} is not between 1 and {MAX_JOBS}")
    return jobs


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=cores,
        metavar="N",
        help=f"check the chain in N processes, split at checkpoints (default: the number of "
        f"cores, here {cores}; 1: one sequential scan; a log under {MIN_EVENTS_PER_JOB:,} "
        f"events a process is scanned in one, where starting processes costs more than it "
        f"saves); the report is the same either way",
    )


def trusted_from(args: argparse.Namespace) -> TrustedKeys | None:
    """The pinned keys named on the command line, or None when none were."""
    trusted = TrustedKeys.of(
        [load_public_key(path) for path in args.pubkey or ()], args.fingerprint or ()
    )
    for path in args.trusted_keys or ():
        trusted = trusted.merged(load_trusted_keys(path))
    return trusted or None


def report_json(report: VerifyReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "authenticity": report.authenticity.value,
        "authentic": report.authenticity is Authenticity.AUTHENTIC,
        "trust": report.trust.value,
        "events": report.events,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "checkpoints": report.checkpoints,
        "signed_seq": report.signed_seq,
        "witnessed": report.witnessed,
        "problems": [
            {"seq": p.seq, "damage": p.damage.value, "detail": p.detail}
            for p in sorted(report.problems, key=lambda p: p.seq)
        ],
        "notes": report.notes,
    }


def print_report(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        out(json.dumps(report_json(report), indent=2))
        return
    first = report.first
    summary = (
        f"{report.events} events, head seq {report.head_seq} hash {report.head_hash}, "
        f"{report.checkpoints} checkpoints verified"
    )
    if first is not None:
        out(f"DAMAGED: first bad seq {first.seq}: {first.damage.value}: {first.detail}")
        for problem in sorted(report.problems, key=lambda p: p.seq)[1:]:
            out(f"  also seq {problem.seq}: {problem.damage.value}: {problem.detail}")
    elif report.authenticity is Authenticity.AUTHENTIC:
        out(f"OK: {summary}; authentic: signed by pinned keys through seq {report.signed_seq}")
    else:
        out(f"CONSISTENT ONLY, NOT AUTHENTICATED: {summary}")
    for note in report.notes:
        out(f"note: {note}")


def print_check(check: SignedCheck, headline: str, *, as_json: bool, **fields: object) -> int:
    """A receipt's or a pack's check: as JSON (status, `fields`, problems, notes), or the
    headline, then each problem and each note. Returns the check's exit code."""
    if as_json:
        found = {
            "status": check.status.value,
            **fields,
            "problems": check.problems,
            "notes": check.notes,
        }
        out(json.dumps(found, indent=2))
    else:
        out(headline)
        for problem in check.problems:
            out(f"  problem: {problem}")
        for note in check.notes:
            out(f"note: {note}")
    return SIGNED_EXIT[check.status]


async def verify(log: AuditLog, args: argparse.Namespace) -> int:
    trusted = trusted_from(args)
    started = time.monotonic()
    last_report = [started]

    def progress(done: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= 1.0:
            last_report[0] = now
            rate = done / max(now - started, 1e-9)
            err(f"verified {done} events ({rate:,.0f}/s)")

    if getattr(args, "segments", None) is not None:
        from audit.segment_verify import verify_across

        report = await verify_across(
            log, args.segments, trusted=trusted, witness=args.witness, progress=progress
        )
    else:
        report = await log.verify(
            trusted=trusted, witness=args.witness, progress=progress, jobs=args.jobs
        )
    print_report(report, args.json)
    end = str(max(report.head_seq, 1))
    await record(
        log,
        args,
        Action.AUDIT_VERIFIED,
        Outcome.OK if report.ok else Outcome.ERROR,
        error_code=None if report.ok else "chain_damaged",
        resources=(ResourceRef(ResourceKind.AUDIT_RANGE, f"1-{end}"),),
    )
    return EXIT_OF[report.authenticity]


RECEIPT_HEADLINES = {
    ReceiptStatus.VALID: "VALID: signed by a pinned key",
    ReceiptStatus.UNPINNED: "SIGNATURE OK, NOT AUTHENTICATED: no pinned keys",
    ReceiptStatus.INVALID: "INVALID",
}


def add_receipt_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "verify-receipt",
        help="check a signed receipt (e.g. a deletion receipt) offline",
        description="Check a receipt's signature against pinned keys and, with --db, that the "
        "audit event it names is in the log with the same hash.",
    )
    parser.add_argument("receipt", type=Path, help="the receipt JSON file ('-': stdin)")
    parser.add_argument("--db", help="also check the audit event in this audit log (URL)")
    parser.add_argument(
        "--as-reviewer", dest="actor", metavar="REVIEWER_ID",
        help="with --db: record the check as done by this reviewer",
    )  # fmt: skip
    parser.add_argument("--actor", dest="actor", help=argparse.SUPPRESS)  # the old spelling
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_arguments(parser)


def _read_receipt(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReceiptFormatError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ReceiptFormatError(f"{path} does not hold a JSON object")
    return document


async def _check_in_log(log: AuditLog, args: argparse.Namespace, receipt: dict[str, Any],
                        check: ReceiptCheck) -> None:  # fmt: skip
    """The event the receipt names must be in the log, with that hash (and that account)."""
    seq = check.audit_seq
    event_range = (ResourceRef(ResourceKind.AUDIT_RANGE, f"{seq}-{seq}"),)
    await record(log, args, Action.AUDIT_VERIFIED, Outcome.OK, resources=event_range)
    found = await log.event_at(seq)
    if found is None:
        check.fail(f"the audit log has no event at seq {seq}")
    elif found.hash != check.audit_hash:
        check.fail(f"the event at seq {seq} has hash {found.hash}, not the receipt's")
    elif "account_id" in receipt and found.event.account_id != receipt["account_id"]:
        check.fail(f"the event at seq {seq} is not about account {receipt['account_id']}")
    else:
        check.notes.append(
            f"the audit log holds event {seq} ({found.event.action.value}) with this hash; "
            "`audit verify` proves the log itself"
        )


async def verify_receipt_command(args: argparse.Namespace) -> int:
    receipt = _read_receipt(args.receipt)
    check = verify_receipt(receipt, trusted_from(args))
    if args.db:  # a --db that is no audit log is said whatever the receipt
        log = await open_cli_log(args.db)
        try:
            if check.status is not ReceiptStatus.INVALID:
                await _check_in_log(log, args, receipt, check)
        finally:
            await log.close()
    headline = (
        f"{RECEIPT_HEADLINES[check.status]}; "
        f"audit event seq {check.audit_seq} hash {check.audit_hash or '-'}"
    )
    return print_check(
        check, headline, as_json=args.json, audit_seq=check.audit_seq, audit_hash=check.audit_hash
    )
