"""Linking a batch of encoded events onto the chain head: shared by every store.

`Pending` and `Linked` are named tuples, not frozen dataclasses: both are made once per
appended event, and a frozen dataclass's `__init__` (one `object.__setattr__` per field) cost
several times a tuple's on the append path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

from audit.encoding import VERSION_PREFIX, encode_text
from audit.event import AuditEvent
from audit.records import IndexColumns, Row


class Pending(NamedTuple):
    """An event encoded by its caller before it joins the writer's queue (off the chain lock)."""

    event: AuditEvent
    body: str
    columns: IndexColumns

    @classmethod
    def of(cls, event: AuditEvent) -> Pending:
        # encode_text refuses a non-event; the event's constructor already validated its
        # fields. The columns as IndexColumns.of has them, from the values already at hand.
        body, time = encode_text(event)
        purpose = event.purpose
        columns = IndexColumns(
            time,
            event.account_id,
            event.actor.id,
            event.action._value_,
            None if purpose is None else purpose._value_,
            event.decision._value_,
        )
        return cls(event, body, columns)


class Linked(NamedTuple):
    seq: int
    prev_hash: bytes
    hash: bytes
    pending: Pending


def link(head_seq: int, head_hash: bytes, batch: Sequence[Pending]) -> list[Linked]:
    """Assign consecutive seqs after the head and chain the hashes; pure, so every store agrees."""
    out: list[Linked] = []
    prev = head_hash
    seq = head_seq
    sha256, prefix = hashlib.sha256, VERSION_PREFIX
    for item in batch:
        seq += 1
        # chain_hash(prev, canonical_bytes(seq, body)), inlined: this runs under the chain lock
        digest = sha256(prev + prefix + seq.to_bytes(8, "big") + item.body.encode()).digest()
        out.append(Linked(seq, prev, digest, item))
        prev = digest
    return out


def row_of(linked: Linked) -> Row:
    """The stored row (also the verifier's `Row`): seq, index columns, body, prev_hash, hash."""
    seq, prev_hash, digest, pending = linked
    return (seq, *pending.columns, pending.body, prev_hash, digest)
