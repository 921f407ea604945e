"""An in-memory audit log with the real chain, checkpoints and verifier.

For tests, the demo and the policy benchmark. It is real code (conformance-tested against the SQL
stores), not a mock; `fail` / `fail_after` make `append()` raise so callers' fail-closed paths can
be exercised.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.chain import Pending, link, row_of
from audit.errors import AuditWriteError
from audit.event import AppendReceipt, AuditEvent
from audit.hashing import GENESIS_HASH
from audit.records import Checkpoint, QueryableLog, Row, RowQuery, StoredEvent
from audit.signing import key_id, public_pem, sign_checkpoint
from audit.trust import TrustedKeys, assess, checkpoint_keys
from audit.verify import ChainVerifier, VerifyReport
from audit.witness import read_witness


class MemoryAuditLog(QueryableLog):
    def __init__(
        self,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60,
    ) -> None:
        self.rows: list[Row] = []
        self.events: list[AuditEvent] = []
        self.checkpoint_list: list[Checkpoint] = []
        self.fail = False  # when set, every append raises AuditWriteError
        self.fail_after: int | None = None  # raise once this many events are stored
        self._key = signing_key
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._last_checkpoint_at = time.monotonic()
        self._closed = False

    @property
    def head(self) -> tuple[int, bytes]:
        return (self.rows[-1][0], self.rows[-1][9]) if self.rows else (0, GENESIS_HASH)

    async def append(self, event: AuditEvent) -> AppendReceipt:
        pending = Pending.of(event)  # validates before any failure switch: bad input stays bad
        if self._closed:
            raise AuditWriteError("the audit log is closed")
        if self.fail or (self.fail_after is not None and len(self.rows) >= self.fail_after):
            raise AuditWriteError("audit store unavailable (MemoryAuditLog failure switch)")
        head_seq, head_hash = self.head
        (linked,) = link(head_seq, head_hash, [pending])
        self.rows.append(row_of(linked))
        self.events.append(event)
        self._maybe_checkpoint(linked.seq, linked.hash)
        return AppendReceipt(seq=linked.seq, event_id=event.event_id, hash=linked.hash.hex())

    def _maybe_checkpoint(self, seq: int, head_hash: bytes, *, force: bool = False) -> None:
        if self._key is None or seq == 0:
            return
        due = seq % self._every == 0 or time.monotonic() - self._last_checkpoint_at >= self._seconds
        if (force or due) and (not self.checkpoint_list or self.checkpoint_list[-1].seq < seq):
            self.checkpoint_list.append(sign_checkpoint(self._key, seq, head_hash))
            self._last_checkpoint_at = time.monotonic()

    async def _select(self, query: RowQuery) -> list[StoredEvent]:
        after, before, limit = query.after_seq, query.before_seq, query.limit
        n = len(self.rows)
        out: list[StoredEvent] = []
        for i in range(n - 1, -1, -1) if query.newest_first else range(n):
            row = self.rows[i]
            seq = row[0]
            if (after is not None and seq <= after) or (before is not None and seq >= before):
                continue
            event = self.events[i]
            if query.filters.matches(event):
                out.append(StoredEvent(seq, event, row[8].hex(), row[9].hex()))
                if len(out) >= limit:
                    break
        return out

    async def checkpoints(self) -> list[Checkpoint]:
        return list(self.checkpoint_list)

    async def verify(
        self,
        *,
        trusted: TrustedKeys | None = None,
        public_keys: Mapping[str, Ed25519PublicKey] | None = None,
        witness: Path | None = None,
    ) -> VerifyReport:
        """Verify the chain; checkpoints are checked against the pinned keys (`trusted`,
        `public_keys`) or else against the log's own key, which proves consistency only; and
        against the checkpoints in the `witness` file, as `AuditLog.verify` does."""
        if public_keys:
            pinned = TrustedKeys.of(public_keys.values())
            trusted = pinned if trusted is None else trusted.merged(pinned)
        own = {} if self._key is None else {key_id(self._key.public_key()): self._pem()}
        keys, trust = checkpoint_keys(trusted, own)
        witnessed = None if witness is None else read_witness(witness)
        verifier = ChainVerifier(
            self.checkpoint_list, keys, witnessed=() if witnessed is None else witnessed.checkpoints
        )
        verifier.feed(self.rows)
        report = verifier.finish()
        if witnessed is not None:
            report.notes += witnessed.notes
        return assess(report, trust)

    def _pem(self) -> str:
        assert self._key is not None
        return public_pem(self._key.public_key())

    async def close(self) -> None:
        if not self._closed and self.rows:
            self._maybe_checkpoint(*self.head, force=True)
        self._closed = True
