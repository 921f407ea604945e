"""One behavioural contract for MemoryAuditLog, the SQLite store and the PostgreSQL store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from audit import (
    Action,
    AuditLog,
    Decision,
    InvalidEventError,
    MemoryAuditLog,
    Purpose,
    QueryFilter,
)
from audit.encoding import canonical_bytes, encode_body
from audit.hashing import GENESIS_HASH, chain_hash
from tests.audit.helpers import T0, make_event

Log = AuditLog | MemoryAuditLog


async def fill(log: Log, n: int) -> None:
    for i in range(n):
        await log.append(make_event(i))


async def test_append_returns_consecutive_seqs_and_chained_hashes(any_log: Log) -> None:
    """Each receipt carries the next seq and SHA-256(prev_hash || canonical bytes)."""
    prev = GENESIS_HASH
    for i in range(5):
        event = make_event(i)
        receipt = await any_log.append(event)
        assert receipt.seq == i + 1
        assert receipt.event_id == event.event_id
        expected = chain_hash(prev, canonical_bytes(i + 1, encode_body(event)))
        assert receipt.hash == expected.hex()
        prev = expected


async def test_concurrent_appends_form_one_gapless_chain(any_log: Log) -> None:
    """200 concurrent appends get 200 distinct consecutive seqs and the chain verifies."""
    receipts = await asyncio.gather(*(any_log.append(make_event(i)) for i in range(200)))
    assert sorted(r.seq for r in receipts) == list(range(1, 201))
    report = await any_log.verify()
    assert report.ok, report.problems
    assert report.events == 200


async def test_stored_event_round_trips(any_log: Log) -> None:
    """What query() returns equals what was appended, with the receipt's seq and hash."""
    event = make_event(7)
    receipt = await any_log.append(event)
    (stored,) = await any_log.query()
    assert stored.event == event
    assert (stored.seq, stored.hash) == (receipt.seq, receipt.hash)


async def test_query_filters(any_log: Log) -> None:
    """Each filter selects exactly the matching events."""
    await fill(any_log, 40)
    await any_log.append(make_event(40, deny=True))

    async def seqs(**kw: object) -> list[int]:
        return [s.seq for s in await any_log.query(QueryFilter(**kw), limit=1000)]  # type: ignore[arg-type]

    assert await seqs(account_id="a2") == [i + 1 for i in range(40) if i % 5 == 2]
    assert await seqs(actor_id="u1") == [i + 1 for i in range(41) if i % 3 == 1]
    assert await seqs(action=Action.GMAIL_MESSAGE_SEND) == [i + 1 for i in range(41) if i % 2]
    assert await seqs(purpose=Purpose.SECURITY) == [i + 1 for i in range(41) if i % 4 == 0]
    assert await seqs(decision=Decision.DENY) == [41]
    assert await seqs(since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=13)) == [
        11,
        12,
        13,
    ]
    assert await seqs(resource_id="m_17") == [18]
    assert await seqs(resource_id="m_1") == [2]  # no prefix match on m_17 / m_1x
    assert await seqs(resource_id="u1") == []  # an actor id is not a resource
    assert await seqs(account_id="a2", actor_id="u1") == [8, 23, 38]


async def test_newest_first_paging_with_cursor(any_log: Log) -> None:
    """Pages of one account's events, newest first, follow on through the before_seq cursor."""
    await fill(any_log, 30)
    first = await any_log.query(QueryFilter(account_id="a0"), limit=4, newest_first=True)
    assert [s.seq for s in first] == [26, 21, 16, 11]
    rest = await any_log.query(
        QueryFilter(account_id="a0"), limit=4, before_seq=first[-1].seq, newest_first=True
    )
    assert [s.seq for s in rest] == [6, 1]
    after = await any_log.query(limit=3, after_seq=28)
    assert [s.seq for s in after] == [29, 30]


async def test_event_at_a_seq_and_the_limit(any_log: Log) -> None:
    """event_at gives the event at a seq, or None past the head; a limit below 1 is refused."""
    receipts = [await any_log.append(make_event(i)) for i in range(3)]
    found = await any_log.event_at(2)
    assert found is not None
    assert (found.seq, found.hash) == (2, receipts[1].hash)
    assert await any_log.event_at(4) is None
    with pytest.raises(ValueError, match="limit must be >= 1"):
        await any_log.query(limit=0)


async def test_invalid_event_is_refused_before_the_chain(any_log: Log) -> None:
    """A malformed event raises InvalidEventError and consumes no seq."""
    await any_log.append(make_event(0))
    with pytest.raises(InvalidEventError):
        await any_log.append("not an event")  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="account_id"):
        replace(make_event(2), account_id="someone@example.com")
    receipt = await any_log.append(make_event(1))
    assert receipt.seq == 2


async def test_checkpoints_are_signed_and_verify(any_log: Log) -> None:
    """Crossing every 10th event yields a checkpoint whose head matches the chain."""
    receipts = [await any_log.append(make_event(i)) for i in range(25)]
    checkpoints = await any_log.checkpoints()
    assert [c.seq for c in checkpoints] == [10, 20]
    assert checkpoints[0].head_hash == receipts[9].hash
    report = await any_log.verify()
    assert report.ok
    assert report.checkpoints == 2
