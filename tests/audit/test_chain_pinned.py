"""The chain linker pinned: seqs, hashes and stored rows, recomputed independently here."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from audit.chain import Linked, Pending, link, row_of
from audit.encoding import encode_body
from audit.event import Actor, AuditEvent, InvalidEventError
from audit.hashing import GENESIS_HASH, chain_hash
from audit.records import IndexColumns
from audit.vocab import Action, ActorKind, Decision, Outcome, Purpose
from tests.audit.helpers import make_event

KNOWN = AuditEvent(
    actor=Actor(ActorKind.USER, "u1"),
    action=Action.GMAIL_MESSAGE_READ,
    decision=Decision.ALLOW,
    outcome=Outcome.OK,
    account_id="a1",
    purpose=Purpose.USER_FEATURE,
    access_id="acc1",
    event_id="ev1",
    time=datetime(2025, 3, 1, tzinfo=UTC),
)


def _sha(prev: bytes, seq: int, body: str) -> bytes:
    return hashlib.sha256(prev + b"\x01" + seq.to_bytes(8, "big") + body.encode()).digest()


def test_pending_holds_the_encoded_body_and_index_columns() -> None:
    """Pending.of encodes the event once: its canonical body as text and its index columns."""
    event = make_event(3)
    pending = Pending.of(event)
    assert pending.event is event
    assert pending.body == encode_body(event).decode("ascii")
    assert pending.columns == IndexColumns.of(event)


def test_pending_refuses_a_non_event() -> None:
    """Pending.of of anything but an AuditEvent raises before the event can join a batch."""
    with pytest.raises(InvalidEventError):
        Pending.of("not an event")  # type: ignore[arg-type]


def test_link_from_genesis_numbers_and_chains() -> None:
    """From the empty chain, seqs run 1..n and each hash covers its predecessor's hash."""
    batch = [Pending.of(make_event(i)) for i in range(5)]
    linked = link(0, GENESIS_HASH, batch)
    prev = GENESIS_HASH
    for n, (item, pending) in enumerate(zip(linked, batch, strict=True), start=1):
        assert (item.seq, item.prev_hash, item.pending) == (n, prev, pending)
        assert item.hash == _sha(prev, n, pending.body)
        assert item.hash == chain_hash(prev, b"\x01" + n.to_bytes(8, "big") + pending.body.encode())
        prev = item.hash
    assert len(linked) == 5


def test_link_continues_after_the_head() -> None:
    """Linking after head (seq 7, hash h) starts at seq 8 with prev h."""
    head = bytes(range(32))
    first, second = link(7, head, [Pending.of(make_event(0)), Pending.of(make_event(1))])
    assert (first.seq, first.prev_hash) == (8, head)
    assert (second.seq, second.prev_hash) == (9, first.hash)
    assert first.hash == _sha(head, 8, first.pending.body)


def test_two_batches_link_like_one() -> None:
    """Linking in two batches from the first batch's head gives the same chain as one batch."""
    batch = [Pending.of(make_event(i)) for i in range(6)]
    whole = link(0, GENESIS_HASH, batch)
    part = link(0, GENESIS_HASH, batch[:2])
    rest = link(part[-1].seq, part[-1].hash, batch[2:])
    assert part + rest == whole


def test_empty_batch_links_nothing() -> None:
    """An empty batch yields no rows."""
    assert link(4, GENESIS_HASH, []) == []


def test_the_same_event_at_another_seq_hashes_differently() -> None:
    """The seq is part of what is hashed, so a row moved to another position no longer fits."""
    pending = Pending.of(make_event(0))
    (at1,) = link(0, GENESIS_HASH, [pending])
    (at2,) = link(1, GENESIS_HASH, [pending])
    assert at1.hash != at2.hash


def test_known_answer_for_format_version_1() -> None:
    """A fixed event at seq 1 after genesis has a fixed hash: the format cannot drift."""
    (item,) = link(0, GENESIS_HASH, [Pending.of(KNOWN)])
    assert item.hash.hex() == "8593dafafc7c9c0bc9b04dd15b27ac9b85b238afd25e5e072b34fe36ca7a2f1c"
    assert item.hash.hex() == (
        hashlib.sha256(
            bytes(32) + b"\x01" + b"\x00" * 7 + b"\x01" + b'{"access_id":"acc1","account_id":'
            b'"a1","action":"gmail.message.read","actor":{"id":"u1","kind":"user"},"basis":null,'
            b'"decision":"allow","error_code":null,"event_id":"ev1","legal_hold":false,'
            b'"outcome":"ok","phase":"event","purpose":"user_feature","reasons":[],'
            b'"request_id":null,"resources":[],"severity":"info","source":{"ip_hash":null,'
            b'"user_agent_hash":null},"time":"2025-03-01T00:00:00.000000Z","v":1}'
        ).hexdigest()
    )


def test_row_of_lays_out_the_stored_row() -> None:
    """row_of is (seq, time, account, actor, action, purpose, decision, body, prev, hash)."""
    (item,) = link(2, b"\x07" * 32, [Pending.of(KNOWN)])
    assert row_of(item) == (
        3, "2025-03-01T00:00:00.000000Z", "a1", "u1", "gmail.message.read", "user_feature",
        "allow", item.pending.body, b"\x07" * 32, item.hash,
    )  # fmt: skip


def test_row_of_keeps_null_columns() -> None:
    """An event without account or purpose stores None in those columns."""
    event = AuditEvent(
        actor=Actor(ActorKind.SYSTEM, "connector"), action=Action.GMAIL_SYNC,
        decision=Decision.ALLOW, outcome=Outcome.OK,
    )  # fmt: skip
    row = row_of(Linked(1, GENESIS_HASH, b"\x01" * 32, Pending.of(event)))
    assert (row[2], row[5]) == (None, None)
    assert row[0] == 1
