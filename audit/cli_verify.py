"""`audit verify`: the chain, its checkpoints against pinned keys, and what that proves."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from audit.cli_common import (
    EXIT_DAMAGED,
    EXIT_OK,
    EXIT_UNAUTHENTICATED,
    err,
    out,
    record,
)
from audit.event import ResourceRef
from audit.log import AuditLog
from audit.signing import load_public_key
from audit.trust import TrustedKeys, load_trusted_keys
from audit.verify import Authenticity, VerifyReport
from audit.vocab import Action, Outcome, ResourceKind

EXIT_OF = {
    Authenticity.AUTHENTIC: EXIT_OK,
    Authenticity.DAMAGED: EXIT_DAMAGED,
    Authenticity.CONSISTENT_ONLY: EXIT_UNAUTHENTICATED,
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

    report = await log.verify(trusted=trusted, witness=args.witness, progress=progress)
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
