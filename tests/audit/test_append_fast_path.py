"""The optimistic append path on both engines, and the group commit's batching.

A store links a batch onto the head it committed last and sends it as one statement
(`SqliteStore._write`, `PostgresStore._write_batch`); when another writer moved the head, that
statement must fail whole and the batch must be relinked under the chain lock. On PostgreSQL
the statement takes the chain lock itself, so a writer on the locked path never links onto a
head the statement is about to move.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import asyncpg  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import audit.log
from audit import AuditLog, open_audit_log
from audit.chain import Pending, link
from audit.hashing import GENESIS_HASH
from audit.pg_store import CHAIN_LOCK, _inserts
from audit.store import BatchDone, CheckpointDecider, write_batch
from tests.audit.helpers import make_event


async def test_two_logs_on_one_database_make_one_chain(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """Two logs (two stores, as two processes would have) append alternately and then at
    once: every batch that finds the head moved is relinked; seqs 1..n, each acked once."""
    first = await open_audit_log(db_url, signing_key=signing_key, checkpoint_every=7)
    second = await open_audit_log(db_url, signing_key=signing_key, checkpoint_every=7)
    try:
        receipts = [await (first, second)[i % 2].append(make_event(i)) for i in range(20)]
        receipts += await asyncio.gather(
            *((first, second)[i % 2].append(make_event(i)) for i in range(20, 220))
        )
        assert sorted(r.seq for r in receipts) == list(range(1, 221))
        by_seq = {r.seq: r.hash for r in receipts}
        report = await second.verify()
        assert report.ok, report.problems
        assert (report.events, report.head_hash) == (220, by_seq[220])
        checkpoints = await first.checkpoints()
        assert {7, 14} <= {c.seq for c in checkpoints}
        assert all(c.head_hash == by_seq[c.seq] for c in checkpoints)
    finally:
        await first.close()
        await second.close()


def _count_batches(log: AuditLog, sizes: Counter[int], monkeypatch: pytest.MonkeyPatch) -> None:
    submit = log.store.submit_batch

    def counted(batch: Sequence[Pending], decide: CheckpointDecider, done: BatchDone) -> None:
        sizes[len(batch)] += 1
        submit(batch, decide, done)

    monkeypatch.setattr(log.store, "submit_batch", counted)


@pytest.mark.parametrize(("in_flight", "sizes_seen"), [(2, {16: 20}), (1, {32: 10})])
async def test_writers_woken_by_a_batch_share_the_next_one(
    db_url: str, monkeypatch: pytest.MonkeyPatch, in_flight: int, sizes_seen: dict[int, int]
) -> None:
    """32 writers appending in a loop: the first burst leaves as two batches of 16, and from
    then on two batches of 16 take turns, each the callers of the one that settled (the next
    batch starts one loop turn after a batch settles, once its callers appended again). With
    one batch in flight there is no second to overlap, so a burst is not split."""
    monkeypatch.setattr(audit.log, "MAX_IN_FLIGHT", in_flight)
    log = await open_audit_log(db_url)
    sizes: Counter[int] = Counter()
    _count_batches(log, sizes, monkeypatch)

    async def writer(w: int) -> None:
        for k in range(10):
            await log.append(make_event(w * 10 + k))

    try:
        await asyncio.gather(*(writer(w) for w in range(32)))
        assert sizes == Counter(sizes_seen)
        assert (await log.verify()).events == 320
    finally:
        await log.close()


async def test_postgres_fast_path_waits_for_the_chain_lock(pg_database: str) -> None:
    """While another session holds the chain lock (a writer on the locked path, between reading
    the head and committing), the fast path's one statement waits for it, then relinks onto
    the head that writer committed."""
    log = await open_audit_log(pg_database)
    other = await open_audit_log(pg_database)
    holder = await asyncpg.connect(pg_database)
    try:
        await log.append(make_event(0))  # log's store now knows the head: its fast path
        await holder.execute(f"BEGIN; SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
        pending = asyncio.create_task(log.append(make_event(1)))
        await asyncio.sleep(0.5)
        assert not pending.done()  # blocked on the lock, nothing inserted yet
        await holder.execute("COMMIT")
        assert (await pending).seq == 2
        assert (await other.append(make_event(2))).seq == 3  # other's first write: locked path
        assert (await log.append(make_event(3))).seq == 4  # the head moved: relinked
        report = await log.verify()
        assert report.ok, report.problems
        assert report.events == 4
    finally:
        await holder.close()
        await log.close()
        await other.close()


def test_postgres_batches_share_a_dozen_statements() -> None:
    """Every batch size maps onto a power-of-two statement, padded with NULL rows, so a
    connection prepares at most a dozen INSERTs however sizes vary; no chunk passes 2,048."""
    pending = [Pending.of(make_event(i)) for i in range(5000)]
    statements: set[str] = set()
    for size in (*range(1, 130), 300, 1000, 2047, 2048, 2049, 5000):
        linked = link(0, GENESIS_HASH, pending[:size])
        inserts = list(_inserts(linked))
        statements |= {sql for sql, _ in inserts}
        rows = [params[i : i + 10] for _, params in inserts for i in range(0, len(params), 10)]
        real = [row for row in rows if row[0] is not None]
        assert [row[0] for row in real] == list(range(1, size + 1))
        # the padding: NULL rows, only at the very end, fewer than the rows sent
        assert rows[len(real) :] == [[None] * 10] * (len(rows) - len(real))
        assert len(rows) - len(real) < max(1, len(real))
        assert all(len(params) <= 20480 for _, params in inserts)
    assert len(statements) == 12  # 1, 2, 4, ... 2048 rows


async def test_postgres_batches_of_any_size_commit_exactly_their_rows(
    pg_database: str,
) -> None:
    """Odd sizes (padded) on the fast path, and a batch too large for one statement on the
    locked path: every row lands once, no padding row does, and the chain verifies."""
    log = await open_audit_log(pg_database)
    try:
        sizes = (1, 3, 17, 2049, 5000, 6)
        events = [Pending.of(make_event(i)) for i in range(sum(sizes))]
        at = 0
        for size in sizes:
            linked = await write_batch(log.store, events[at : at + size], lambda *_: None)
            assert [item.seq for item in linked] == list(range(at + 1, at + size + 1))
            at += size
        report = await log.verify()
        assert report.ok, report.problems
        assert report.events == sum(sizes)
    finally:
        await log.close()
