"""Group commit under contention: pipelined batches, and two writers sharing one SQLite file.

The SQLite store links a batch onto the head it committed last and inserts it in one statement
(see `SqliteStore._write`); when another writer moved the head, that statement must fail whole
and the batch must be relinked under the write lock. These tests make both paths run.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import audit.log
from audit import AuditWriteError, open_audit_log
from tests.audit.helpers import make_event


def _seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM audit_events ORDER BY seq")]


async def test_two_writers_on_one_file_interleave_into_one_chain(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    """Alternating writers each find the head moved by the other: every batch is relinked."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = await open_audit_log(url, signing_key=signing_key, checkpoint_every=7)
    second = await open_audit_log(url, signing_key=signing_key, checkpoint_every=7)
    try:
        receipts = []
        for i in range(30):
            log = first if i % 2 == 0 else second
            receipts.append(await log.append(make_event(i)))
        # and concurrently, so that both fast paths race for the same seqs
        receipts += await asyncio.gather(
            *(((first, second)[i % 2]).append(make_event(i)) for i in range(30, 130))
        )
        assert sorted(r.seq for r in receipts) == list(range(1, 131))
        assert _seqs(tmp_path / "audit.db") == list(range(1, 131))
        report = await first.verify()
        assert report.ok, report
        assert report.events == 130
        # one checkpoint per batch crossing a multiple of 7, whichever writer wrote it, each
        # signing the hash the chain really has at its seq
        by_seq = {r.seq: r.hash for r in receipts}
        checkpoints = await second.checkpoints()
        assert {7, 14, 21, 28} <= {c.seq for c in checkpoints}
        assert all(c.head_hash == by_seq[c.seq] for c in checkpoints)
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("in_flight", [1, 2, 3])
async def test_batches_in_flight_keep_one_gapless_chain(
    db_url: str, signing_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch,
    in_flight: int,
) -> None:  # fmt: skip
    """Waves of concurrent appends, one or several batches committing at once (on PostgreSQL
    they take turns on the one writer connection): seqs stay contiguous, in the order the
    batches left, and every caller gets its own receipt."""
    monkeypatch.setattr(audit.log, "MAX_IN_FLIGHT", in_flight)
    log = await open_audit_log(db_url, signing_key=signing_key, checkpoint_every=50)
    try:
        receipts = []
        for wave in range(5):
            receipts += await asyncio.gather(
                *(log.append(make_event(wave * 200 + i)) for i in range(200))
            )
        assert sorted(r.seq for r in receipts) == list(range(1, 1001))
        assert len({r.event_id for r in receipts}) == 1000
        # gather returns in call order and each wave's appends queued in that order
        assert [r.seq for r in receipts] == list(range(1, 1001))
        report = await log.verify()
        assert report.ok, report
        assert report.events == 1000
        assert report.checkpoints >= 5
    finally:
        await log.close()


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_relinks(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    """A write error reaches every caller of that batch; later appends still chain correctly."""
    path = tmp_path / "audit.db"
    log = await open_audit_log(f"sqlite:///{path}", signing_key=signing_key)
    try:
        await log.append(make_event(0))
        blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")  # hold the write lock past the store's busy timeout
        store = log.store
        store._w().execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]
        results = await asyncio.gather(
            *(log.append(make_event(i)) for i in range(1, 4)), return_exceptions=True
        )
        assert all(isinstance(r, AuditWriteError) for r in results), results
        blocker.execute("ROLLBACK")
        blocker.close()
        receipt = await log.append(make_event(9))
        assert receipt.seq == 2
        assert (await log.verify()).ok
    finally:
        await log.close()
