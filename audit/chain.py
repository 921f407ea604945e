"""Linking a batch of encoded events onto the chain head: shared by every store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.encoding import canonical_bytes, encode_body
from audit.event import AuditEvent
from audit.hashing import chain_hash
from audit.records import IndexColumns, Row


@dataclass(frozen=True, slots=True)
class Pending:
    """An event encoded by its caller before it joins the writer's queue (off the chain lock)."""

    event: AuditEvent
    body: str
    columns: IndexColumns

    @classmethod
    def of(cls, event: AuditEvent) -> Pending:
        # encode_body refuses a non-event; the event's constructor already validated its fields.
        return cls(event, encode_body(event).decode("ascii"), IndexColumns.of(event))


@dataclass(frozen=True, slots=True)
class Linked:
    seq: int
    prev_hash: bytes
    hash: bytes
    pending: Pending


def link(head_seq: int, head_hash: bytes, batch: Sequence[Pending]) -> list[Linked]:
    """Assign consecutive seqs after the head and chain the hashes; pure, so every store agrees."""
    out: list[Linked] = []
    prev = head_hash
    seq = head_seq
    for item in batch:
        seq += 1
        digest = chain_hash(prev, canonical_bytes(seq, item.body.encode("ascii")))
        out.append(Linked(seq, prev, digest, item))
        prev = digest
    return out


def row_of(linked: Linked) -> Row:
    """The stored row (also the verifier's `Row`): seq, index columns, body, prev_hash, hash."""
    c = linked.pending.columns
    return (
        linked.seq,
        c.time,
        c.account_id,
        c.actor_id,
        c.action,
        c.purpose,
        c.decision,
        linked.pending.body,
        linked.prev_hash,
        linked.hash,
    )
