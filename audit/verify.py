"""Streaming verification: recompute every hash, check every checkpoint, name the first damage.

Rows arrive in big chunks from any store as plain tuples (see `Row`), so the loop does nothing
per event beyond one SHA-256 and a few substring tests; that is what keeps it above 300k events/s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.encoding import VERSION_PREFIX
from audit.hashing import GENESIS_HASH
from audit.records import Checkpoint, Row, columns_agree
from audit.signing import checkpoint_is_valid


class Damage(StrEnum):
    ALTERED = "altered"  # an event's content (or its index columns) no longer matches its hash
    DELETED = "deleted"  # an event is missing from the chain
    INSERTED = "inserted"  # an event that the chain does not link to sits in it
    REORDERED = "reordered"  # events are out of chain order
    TRUNCATED = "truncated"  # events after a signed checkpoint's position are gone
    FORGED_CHECKPOINT = "forged_checkpoint"  # a checkpoint whose signature does not verify
    CHECKPOINT_DELETED = "checkpoint_deleted"  # a witnessed checkpoint is gone from the database
    FORGED_SEGMENT = "forged_segment"  # an archive segment or tombstone that does not verify


class Trust(StrEnum):
    """Where the keys that checked the checkpoints came from."""

    PINNED = "pinned"  # given by the verifier (a trusted-keys file, --pubkey): authenticity
    DATABASE = "database"  # read from the audit database itself: consistency only


class Authenticity(StrEnum):
    """What a verification proved (the CLI's exit status follows it)."""

    AUTHENTIC = "authentic"  # intact, and signed by a pinned key up to `signed_seq`
    CONSISTENT_ONLY = "consistent_only"  # intact, but no pinned key vouches for it
    DAMAGED = "damaged"  # at least one problem


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    damage: Damage
    detail: str


@dataclass(slots=True)
class VerifyReport:
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH.hex()
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trust: Trust = Trust.DATABASE
    signed_seq: int = 0  # the last checkpoint that verified and matched the chain
    witnessed: int = 0  # checkpoints read from the witness

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def authenticity(self) -> Authenticity:
        if self.problems:
            return Authenticity.DAMAGED
        if self.trust is Trust.PINNED and (self.signed_seq or not self.events):
            return Authenticity.AUTHENTIC
        return Authenticity.CONSISTENT_ONLY

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None


class ChainVerifier:
    """Feed rows in seq order with `feed()`, then call `finish()`."""

    def __init__(
        self,
        checkpoints: Iterable[Checkpoint] = (),
        public_keys: Mapping[str, Ed25519PublicKey] | None = None,
        progress: Callable[[int], None] | None = None,
        witnessed: Iterable[Checkpoint] = (),
    ) -> None:
        self.report = VerifyReport()
        self._prev = GENESIS_HASH
        self._expected = 1
        self._broken = False
        self._pending: Row | None = None  # a bad row waiting for its successor to classify it
        self._last_good_checkpoint = 0
        self._progress = progress
        self._checkpoints: dict[int, Checkpoint] = {}
        keys = dict(public_keys or {})
        in_db = sorted(checkpoints, key=lambda c: c.seq)
        for checkpoint in in_db:
            self.report.checkpoints += 1
            key = keys.get(checkpoint.key_id)
            if key is None:
                self._problem(
                    checkpoint.seq,
                    Damage.FORGED_CHECKPOINT,
                    f"checkpoint at seq {checkpoint.seq} is signed by unknown key "
                    f"{checkpoint.key_id}",
                )
            elif not checkpoint_is_valid(key, checkpoint):
                self._problem(
                    checkpoint.seq,
                    Damage.FORGED_CHECKPOINT,
                    f"checkpoint at seq {checkpoint.seq} has an invalid signature",
                )
            else:
                self._checkpoints[checkpoint.seq] = checkpoint
        self._stored_seqs = {c.seq for c in in_db}
        self._witness_only: set[int] = set()  # seqs only the witness holds a checkpoint for
        self._witnessed: set[int] = set()
        for checkpoint in sorted(witnessed, key=lambda c: c.seq):
            self._witness(checkpoint, keys)

    def _witness(self, checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> None:
        """A checkpoint copied outside the database: it must verify, and it overrides the
        database's copy, so deleting or replacing the database's checkpoints changes nothing."""
        self.report.witnessed += 1
        seq = checkpoint.seq
        key = keys.get(checkpoint.key_id)
        if key is None or not checkpoint_is_valid(key, checkpoint):
            why = (
                f"is signed by unknown key {checkpoint.key_id}"
                if key is None
                else "has an invalid signature"
            )
            self._problem(seq, Damage.FORGED_CHECKPOINT, f"witnessed checkpoint at seq {seq} {why}")
            return
        valid = self._checkpoints.get(seq)  # the database's copy, if it verified
        if seq not in self._stored_seqs:
            self._witness_only.add(seq)
        elif valid is not None and valid != checkpoint:
            self._problem(
                seq,
                Damage.FORGED_CHECKPOINT,
                f"checkpoint at seq {seq} differs from its witnessed copy",
            )
        self._witnessed.add(seq)
        self._checkpoints[seq] = checkpoint

    def _problem(self, seq: int, damage: Damage, detail: str) -> None:
        self.report.problems.append(Problem(seq, damage, detail))

    def feed(self, rows: Iterable[Row]) -> None:
        if not self._broken:
            self._scan(rows)
        if self._progress is not None:
            self._progress(self._expected - 1)

    def _scan(self, rows: Iterable[Row]) -> None:
        sha256 = hashlib.sha256
        prefix = VERSION_PREFIX
        checkpoints = self._checkpoints
        prev = self._prev
        expected = self._expected
        for row in rows:
            if self._pending is not None:
                self._classify(self._pending, row)
                return
            seq, body, stored_prev, stored = row[0], row[7], row[8], row[9]
            if seq != expected:
                if seq > expected:
                    missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                    self._break(expected, Damage.DELETED, f"events {missing} are missing")
                else:
                    self._break(seq, Damage.REORDERED, f"seq {seq} appears after {expected - 1}")
                return
            digest = sha256(prev + prefix + seq.to_bytes(8, "big") + body.encode()).digest()
            if digest != stored or stored_prev != prev:
                self._pending = row
                continue
            if not columns_agree(row):
                self._break(seq, Damage.ALTERED, f"index columns of seq {seq} differ from its body")
                return
            checkpoint = checkpoints.get(seq)
            if checkpoint is not None:
                if checkpoint.head_hash != stored.hex():
                    first = self._last_good_checkpoint + 1
                    kind = "witnessed" if seq in self._witnessed else "signed"
                    self._break(
                        first,
                        Damage.ALTERED,
                        f"chain rewritten between seq {first} and {seq}: head at {seq} does "
                        f"not match its {kind} checkpoint",
                    )
                    return
                self._last_good_checkpoint = seq
            prev = stored
            expected += 1
            # Kept current on every row so an early return leaves a consistent state.
            self._prev, self._expected = prev, expected

    def checkpoint_hashes(self) -> dict[int, str]:
        """seq -> head hash of every checkpoint the scan compares the chain with."""
        return {seq: checkpoint.head_hash for seq, checkpoint in self._checkpoints.items()}

    @property
    def head(self) -> tuple[int, bytes]:
        """The seq and hash the chain has been checked up to (audit.segment_verify)."""
        return self._expected - 1, self._prev

    def adopt(self, head_seq: int, head_hash: bytes) -> None:
        """Take the state a clean scan of rows 1..head_seq ends in, checked elsewhere
        (audit.verify_parallel): every hash and link held, every checkpoint up to the head
        matched. Call instead of `feed`, before `finish`."""
        self._prev, self._expected = head_hash, head_seq + 1
        self._last_good_checkpoint = max((s for s in self._checkpoints if s <= head_seq), default=0)
        if self._progress is not None:
            self._progress(head_seq)

    def _break(self, seq: int, damage: Damage, detail: str) -> None:
        self._broken = True
        self._problem(seq, damage, detail)

    def _classify(self, bad: Row, successor: Row | None) -> None:
        """Name the damage at a row whose hash or link is wrong, using the row after it."""
        self._pending = None
        seq, stored_prev = bad[0], bad[8]
        if stored_prev == self._prev:
            self._break(seq, Damage.ALTERED, f"event {seq} does not match its hash")
        elif successor is not None and successor[9] == stored_prev:
            self._break(seq, Damage.REORDERED, f"event at seq {seq} belongs after seq {seq + 1}")
        elif successor is not None and successor[8] == self._prev:
            self._break(seq, Damage.INSERTED, f"event at seq {seq} is not linked from the chain")
        else:
            self._break(seq, Damage.DELETED, f"the event before seq {seq} in the chain is missing")

    def finish(self) -> VerifyReport:
        if self._pending is not None:
            self._classify(self._pending, None)
        report = self.report
        report.events = report.head_seq = self._expected - 1
        report.head_hash = self._prev.hex()
        report.signed_seq = self._last_good_checkpoint
        if not self._broken:
            for seq in sorted(s for s in self._witness_only if s <= report.head_seq):
                self._problem(
                    seq,
                    Damage.CHECKPOINT_DELETED,
                    f"the checkpoint at seq {seq} is in the witness but not in the database",
                )
        if not self._broken and self._checkpoints:
            last = max(self._checkpoints)
            if last > report.head_seq:
                what = (
                    f"the witness holds a checkpoint at seq {last}"
                    if last in self._witness_only
                    else f"a signed checkpoint covers seq {last}"
                )
                self._problem(
                    report.head_seq + 1,
                    Damage.TRUNCATED,
                    f"{what} but the log ends at {report.head_seq}",
                )
        return report
