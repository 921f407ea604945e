"""Benchmark the evidence pack over a large audit log; prints one JSON line.

Fills a SQLite audit log with N events (default 1,000,000: owners' reads, consented and refused
operator reads, forbidden-purpose attempts, unlinks) through the store's own batch write path,
signs a checkpoint over it, then times `connector evidence` (the suites skipped: the pack over
the log is what is measured) and `audit verify-pack` on the result. Target: pack under 60 s.
Then one user's export from that log (connector/rights/export.py: the export recorded, the whole
access history read page by page through `Oversight.history` from the `(account_id, seq)` index,
the JSON document and the CSV built). Target: export under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit import vocab
from audit.chain import Pending
from audit.event import Actor, AuditEvent, Basis, ResourceRef
from audit.log import open_audit_log
from audit.signing import generate_key, public_pem, save_private_key
from audit.store import write_batch

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ACCOUNTS = 1000
BATCH = 50_000


def _event(i: int) -> AuditEvent:
    account = f"acct-{i % ACCOUNTS}"
    when = T0 + timedelta(milliseconds=i)
    message = (ResourceRef(vocab.ResourceKind.MESSAGE, f"{i:016x}"),)
    consent = Basis(vocab.BasisKind.CONSENT, f"consent-{i % 50}")

    def operator_read(
        decision: vocab.Decision, outcome: vocab.Outcome, **details: Any
    ) -> AuditEvent:
        return AuditEvent(
            Actor(vocab.ActorKind.OPERATOR, f"op-{i % 7}"), vocab.Action.GMAIL_MESSAGE_READ,
            decision, outcome, account_id=account, phase=vocab.Phase.DECISION, time=when,
            **details,
        )  # fmt: skip

    if i % 1000 == 1:  # a forbidden-purpose attempt, refused
        return operator_read(
            vocab.Decision.DENY, vocab.Outcome.DENIED, purpose=vocab.Purpose.ADVERTISING,
            severity=vocab.Severity.HIGH, reasons=("purpose.forbidden",),
        )  # fmt: skip
    if i % 200 == 2:  # a support read the consent does not cover, refused
        return operator_read(
            vocab.Decision.DENY, vocab.Outcome.DENIED, purpose=vocab.Purpose.CONSENTED_SUPPORT,
            basis=consent, reasons=("consent.not_covering",), resources=message,
        )  # fmt: skip
    if i % 100 == 3:  # a consented support read
        return operator_read(
            vocab.Decision.ALLOW, vocab.Outcome.PENDING, purpose=vocab.Purpose.CONSENTED_SUPPORT,
            basis=consent, resources=message,
        )  # fmt: skip
    if i % 5000 == 4:
        return AuditEvent(
            Actor(vocab.ActorKind.USER, f"user-{i % ACCOUNTS}"),
            vocab.Action.ACCOUNT_UNLINKED,
            vocab.Decision.ALLOW,
            vocab.Outcome.OK,
            account_id=account,
            purpose=vocab.Purpose.USER_FEATURE,
            time=when,
        )
    return AuditEvent(
        Actor(vocab.ActorKind.USER, f"user-{i % ACCOUNTS}"), vocab.Action.GMAIL_MESSAGE_READ,
        vocab.Decision.ALLOW, vocab.Outcome.PENDING if i % 2 else vocab.Outcome.OK,
        account_id=account, purpose=vocab.Purpose.USER_FEATURE,
        phase=vocab.Phase.DECISION if i % 2 else vocab.Phase.OUTCOME, resources=message, time=when,
    )  # fmt: skip


async def fill(url: str, key_file: Path, total: int) -> float:
    from audit.signing import load_private_key

    log = await open_audit_log(url, signing_key=load_private_key(key_file))
    started = time.perf_counter()
    done = 0
    while done < total:
        n = min(BATCH, total - done)
        chunk = [Pending.of(_event(done + i)) for i in range(n)]
        await write_batch(log.store, chunk, lambda _f, _l, _h: None)
        done += n
    await log.close()  # signs a checkpoint over the whole log
    return time.perf_counter() - started


class _Owners:
    """acct-N is user-N's (the accounts of the filled log)."""

    async def owner_of(self, account_id: str) -> str | None:
        return "user-" + account_id.removeprefix("acct-")


async def export_one(url: str, account: str = "acct-7") -> tuple[float, int, int]:
    """One user's export as GET /v1/accounts/{id}/export makes it: seconds, events, bytes."""
    from connector.policy.authority import Authority
    from connector.policy.oversight import Oversight
    from connector.policy.recorder import Change, Recorder
    from connector.policy.vocab import Operation
    from connector.rights.export import access_history, export_document, history_csv

    log = await open_audit_log(url)
    try:
        authority = Authority(Recorder(log), _Owners())
        actor = Actor(vocab.ActorKind.USER, "user-" + account.removeprefix("acct-"))
        started = time.perf_counter()
        exported = Change(actor, Operation.HISTORY_READ, vocab.Action.ACCOUNT_DATA_EXPORTED,
                          account_id=account)  # fmt: skip
        await authority.permit(exported)
        history = await access_history(Oversight(log, authority), actor, account, request_id=None)
        body = json.dumps(export_document({"id": account}, [], [], history)) + history_csv(history)
        return time.perf_counter() - started, len(history), len(body.encode())
    finally:
        await log.close()


def _quiet(call: object, argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code: int = call(argv)  # type: ignore[operator]
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    from audit.cli import main as audit_main
    from connector.__main__ import main as connector_main

    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        d = Path(tmp)
        key = generate_key()
        save_private_key(key, d / "key.pem")
        (d / "trusted.pem").write_text(public_pem(key.public_key()), encoding="ascii")
        url = f"sqlite:///{d / 'audit.db'}"
        fill_s = asyncio.run(fill(url, d / "key.pem", args.events))
        common = ["--db", url, "--trusted-keys", str(d / "trusted.pem")]
        started = time.perf_counter()
        code = _quiet(connector_main, ["evidence", "--out", str(d / "pack"), "--signing-key",
                                       str(d / "key.pem"), "--skip-tests", *common])  # fmt: skip
        pack_s = time.perf_counter() - started
        assert code == 0, "connector evidence failed"
        manifest = json.loads((d / "pack" / "manifest.json").read_text())
        started = time.perf_counter()
        verified = _quiet(audit_main, ["verify-pack", str(d / "pack"), *common])
        verify_s = time.perf_counter() - started
        assert verified == 0, "audit verify-pack failed"
        export_s, export_events, export_bytes = asyncio.run(export_one(url))
        result: dict[str, object] = {
            "events": args.events,
            "fill_s": round(fill_s, 1),
            "pack_s": round(pack_s, 2),
            "pack_target_s": 60,
            "verify_pack_s": round(verify_s, 2),
            "pack_bytes": sum(p.stat().st_size for p in (d / "pack").rglob("*") if p.is_file()),
            "refusals": len(manifest["figures"]["refusals"]),
            "human_accesses": len(manifest["figures"]["human_accesses"]),
            "user_export_s": round(export_s, 3),
            "user_export_target_s": 1,
            "user_export_events": export_events,
            "user_export_bytes": export_bytes,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
