"""`audit verify --segments DIR`: the archived segments and the live log checked as one chain.

Segments are fed to one ChainVerifier in seq order, then the live rows after them, so every
prev-hash link is checked across each boundary and every checkpoint (kept in the live store)
against the rows it covers. A dropped segment counts only with a tombstone signed by a checkpoint
key that continues the chain (its first prev-hash is the hash reached so far) and matches any
checkpoint at its end; the chain then resumes from the tombstone's last hash. Anything else
(a range with neither rows nor tombstone, a rows file that differs from its signed manifest, a
tombstone that does not verify) is damage at the range's first seq.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.log import AuditLog
from audit.records import QueryFilter, RowQuery
from audit.segments import Entry, document_is_valid, file_digest, read_archive, read_rows
from audit.trust import TrustedKeys, assess, checkpoint_keys
from audit.verify import ChainVerifier, Damage, Problem, VerifyReport
from audit.witness import read_witness

CHUNK = 50_000


def _range(entry: Entry) -> str:
    return f"events {entry.first}..{entry.last}"


class SegmentChecker:
    """Archive entries fed to one verifier in seq order; the first failure kept."""

    def __init__(self, verifier: ChainVerifier, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self.verifier = verifier
        self.keys = keys
        self.failed: Problem | None = None
        self.notes: list[str] = []

    def fail(self, seq: int, damage: Damage, detail: str) -> None:
        self.failed = Problem(seq, damage, detail)

    def damaged(self) -> bool:
        return self.failed is not None or bool(self.verifier.report.problems)

    def signed(self, entry: Entry, document: Mapping[str, Any], what: str) -> bool:
        """`document` verifies under a checkpoint key and names this entry's range."""
        if not document_is_valid(self.keys, document):
            self.fail(
                entry.first,
                Damage.FORGED_SEGMENT,
                f"{_range(entry)}: the {what} is not signed by a known key",
            )
        elif (document["first_seq"], document["last_seq"]) != (entry.first, entry.last):
            self.fail(
                entry.first,
                Damage.FORGED_SEGMENT,
                f"{_range(entry)}: the {what} is for events {document['first_seq']}.."
                f"{document['last_seq']}",
            )
        return self.failed is None

    def dropped(self, entry: Entry, tomb: Mapping[str, Any]) -> None:
        seq, prev = self.verifier.head
        if not self.signed(entry, tomb, "tombstone"):
            return
        if tomb["first_prev_hash"] != prev.hex() or entry.first != seq + 1:
            self.fail(
                entry.first,
                Damage.DELETED,
                f"the tombstone of {_range(entry)} does not continue the chain at {seq}",
            )
        elif (
            self.verifier.checkpoint_hashes().get(entry.last, tomb["last_hash"])
            != tomb["last_hash"]
        ):
            self.fail(
                entry.first,
                Damage.ALTERED,
                f"the tombstone of {_range(entry)} differs from the checkpoint at {entry.last}",
            )
        else:
            self.verifier.adopt(entry.last, bytes.fromhex(tomb["last_hash"]))
            self.notes.append(
                f"{_range(entry)} dropped at {tomb.get('dropped_at')} "
                f"({tomb.get('reason')}): signed tombstone verified"
            )

    def archived(self, entry: Entry, rows: Path) -> None:
        manifest = entry.manifest
        if manifest is None:
            self.fail(
                entry.first, Damage.FORGED_SEGMENT, f"{_range(entry)}: the segment has no manifest"
            )
            return
        if not self.signed(entry, manifest, "segment manifest"):
            return
        for chunk in read_rows(rows):
            self.verifier.feed(chunk)
        if self.damaged():
            return
        if self.verifier.head != (entry.last, bytes.fromhex(manifest["last_hash"])):
            self.fail(
                entry.first,
                Damage.ALTERED,
                f"{_range(entry)}: the segment does not end at its manifest's hash",
            )
        elif file_digest(rows) != manifest["rows_sha256"]:
            self.fail(
                entry.first,
                Damage.ALTERED,
                f"{_range(entry)}: the rows file differs from its signed manifest",
            )
        else:
            self.notes.append(f"{_range(entry)} read from archived segment {rows.name}")

    def entry(self, entry: Entry) -> None:
        seq = self.verifier.head[0]
        if entry.first != seq + 1:
            what = "are in no segment" if entry.first > seq + 1 else "overlap another segment"
            self.fail(seq + 1, Damage.DELETED, f"events from {seq + 1} {what}")
        elif entry.rows is not None:
            self.archived(entry, entry.rows)
        elif entry.tombstone is not None:
            self.dropped(entry, entry.tombstone)
        else:
            self.fail(
                entry.first,
                Damage.DELETED,
                f"{_range(entry)}: the segment is gone and left no tombstone",
            )


async def _live(log: AuditLog, across: SegmentChecker, chunk: int) -> None:
    """The live rows after the archive, from the one at its end (which must match it)."""
    covered, covered_hash = across.verifier.head
    if covered == 0:
        async for rows in log.store.stream_rows(chunk):
            across.verifier.feed(rows)
        return
    after = covered - 1
    while True:
        rows = await log.store.query_rows(RowQuery(QueryFilter(), chunk, after_seq=after))
        if not rows:
            return
        if rows[0][0] == covered:
            if rows[0][9] != covered_hash:
                across.fail(
                    covered, Damage.ALTERED, f"live event {covered} differs from the archive"
                )
                return
            rows = rows[1:]
        if rows:
            across.verifier.feed(rows)
        if across.damaged() or len(rows) < chunk - 1:
            return
        after = rows[-1][0]


async def verify_across(
    log: AuditLog,
    directory: Path,
    *,
    trusted: TrustedKeys | None = None,
    witness: Path | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> VerifyReport:
    """Like `AuditLog.verify` (pinned keys, a witness file), with the archive in `directory`."""
    keys, trust = checkpoint_keys(trusted, await log.store.public_keys())
    witnessed = None if witness is None else await asyncio.to_thread(read_witness, witness)
    verifier = ChainVerifier(
        await log.store.checkpoints(),
        keys,
        progress,
        witnessed=() if witnessed is None else witnessed.checkpoints,
    )
    across = SegmentChecker(verifier, keys)
    for entry in read_archive(directory):
        across.entry(entry)
        if across.damaged():
            break
    if not across.damaged():
        await _live(log, across, chunk)
    report = verifier.finish()
    if across.failed is not None:
        report.problems = [p for p in report.problems if p.damage is not Damage.TRUNCATED] + [
            across.failed
        ]
    report.notes += across.notes
    if witnessed is not None:
        report.notes += witnessed.notes
    return assess(report, trust)
