"""Canonical encoding and keyed hashing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from audit import Actor, AuditEvent, Basis, ResourceRef, Source, keyed_hash, vocab
from audit.encoding import canonical_bytes, decode_body, encode_body, to_record

ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,20}", fullmatch=True)
rid = st.from_regex(r"[A-Za-z0-9_\-.:=]{1,30}", fullmatch=True)
resources = st.builds(ResourceRef, st.sampled_from(vocab.ResourceKind), rid)
reason = st.from_regex(r"[a-z0-9][a-z0-9_.:\-]{0,10}", fullmatch=True)
hexd = st.from_regex(r"[0-9a-f]{16,64}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def events(draw: st.DrawFn) -> AuditEvent:
    decision = draw(st.sampled_from(vocab.Decision))
    return AuditEvent(
        actor=Actor(draw(st.sampled_from(vocab.ActorKind)), draw(ident)),
        action=draw(st.sampled_from(vocab.Action)),
        decision=decision,
        outcome=draw(st.sampled_from(vocab.Outcome)),
        account_id=draw(st.none() | ident),
        purpose=draw(st.none() | st.sampled_from(vocab.Purpose)),
        basis=draw(st.none() | st.builds(Basis, st.sampled_from(vocab.BasisKind), ident)),
        resources=tuple(draw(st.lists(resources, max_size=4))),
        reasons=tuple(draw(st.lists(reason, min_size=decision is vocab.Decision.DENY, max_size=3))),
        phase=draw(st.sampled_from(vocab.Phase)),
        severity=draw(st.sampled_from(vocab.Severity)),
        error_code=draw(st.none() | ident),
        access_id=draw(ident),
        request_id=draw(st.none() | ident),
        legal_hold=draw(st.booleans()),
        source=Source(draw(st.none() | hexd), draw(st.none() | hexd)),
        event_id=draw(ident),
        time=draw(times),
    )


@settings(max_examples=200, deadline=None)
@given(events())
def test_fast_encoder_is_canonical_json_and_round_trips(event: AuditEvent) -> None:
    """encode_body equals sorted-key compact json.dumps of the record, and decodes to the event."""
    body = encode_body(event)
    assert body == json.dumps(to_record(event), sort_keys=True, separators=(",", ":")).encode()
    assert decode_body(body) == event
    assert encode_body(decode_body(body)) == body


def test_encoding_is_versioned_and_places_seq() -> None:
    """Canonical bytes start with the format version byte, then the 8-byte big-endian seq."""
    data = canonical_bytes(258, b"{}")
    assert data[:1] == b"\x01"
    assert data[1:9] == (258).to_bytes(8, "big")


def test_time_is_utc_microseconds() -> None:
    """Times are written in UTC with six fractional digits, whatever the input offset."""
    event = AuditEvent(
        actor=Actor(vocab.ActorKind.USER, "u1"),
        action=vocab.Action.GMAIL_MESSAGE_READ,
        decision=vocab.Decision.ALLOW,
        outcome=vocab.Outcome.OK,
        time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(microseconds=7),
    )
    assert b'"time":"2025-01-02T03:04:05.000007Z"' in encode_body(event)


def test_keyed_hash_is_hmac_sha256() -> None:
    """keyed_hash is deterministic, key-dependent hex HMAC-SHA256."""
    a = keyed_hash(b"k1", "alice@example.com")
    assert a == keyed_hash(b"k1", "alice@example.com")
    assert a != keyed_hash(b"k2", "alice@example.com")
    assert len(a) == 64
    assert int(a, 16) >= 0
