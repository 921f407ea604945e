"""The canonical encoding pinned byte for byte, and every way a stored body is refused.

Format version 1 is a promise to every reviewer who ever verifies a log: the exact bytes of a
known event, the time format, the version byte and the seq placement are written out here so
any change to them is a failing test, not a silently incompatible log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from audit import vocab
from audit.encoding import (
    FORMAT_VERSION,
    VERSION_PREFIX,
    canonical_bytes,
    decode_body,
    encode_body,
    format_time,
    from_record,
    parse_time,
    to_record,
)
from audit.event import Actor, AuditEvent, Basis, InvalidEventError, ResourceRef, Source

WHEN = datetime(2025, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
FULL = AuditEvent(
    actor=Actor(vocab.ActorKind.OPERATOR, "op1"),
    action=vocab.Action.GMAIL_MESSAGE_READ,
    decision=vocab.Decision.DENY,
    outcome=vocab.Outcome.DENIED,
    account_id="acct1",
    purpose=vocab.Purpose.SECURITY,
    basis=Basis(vocab.BasisKind.ACCESS_REQUEST, "r1"),
    resources=(
        ResourceRef(vocab.ResourceKind.MESSAGE, "m1"),
        ResourceRef(vocab.ResourceKind.THREAD, "t1"),
    ),
    reasons=("approval.expired", "basis.unknown"),
    phase=vocab.Phase.DECISION,
    severity=vocab.Severity.WARNING,
    error_code="rateLimitExceeded",
    access_id="acc1",
    request_id="req1",
    legal_hold=True,
    source=Source("ab" * 8, "cd" * 8),
    event_id="ev1",
    time=WHEN,
)
FULL_BODY = (
    '{"access_id":"acc1","account_id":"acct1","action":"gmail.message.read",'
    '"actor":{"id":"op1","kind":"operator"},"basis":{"id":"r1","kind":"access_request"},'
    '"decision":"deny","error_code":"rateLimitExceeded","event_id":"ev1","legal_hold":true,'
    '"outcome":"denied","phase":"decision","purpose":"security",'
    '"reasons":["approval.expired","basis.unknown"],"request_id":"req1",'
    '"resources":[{"id":"m1","kind":"message"},{"id":"t1","kind":"thread"}],'
    '"severity":"warning","source":{"ip_hash":"abababababababab",'
    '"user_agent_hash":"cdcdcdcdcdcdcdcd"},"time":"2025-03-01T12:30:45.123456Z","v":1}'
)
BARE = AuditEvent(
    actor=Actor(vocab.ActorKind.SYSTEM, "connector"),
    action=vocab.Action.GMAIL_SYNC,
    decision=vocab.Decision.ALLOW,
    outcome=vocab.Outcome.OK,
    access_id="acc2",
    event_id="ev2",
    time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
)
BARE_BODY = (
    '{"access_id":"acc2","account_id":null,"action":"gmail.sync",'
    '"actor":{"id":"connector","kind":"system"},"basis":null,"decision":"allow",'
    '"error_code":null,"event_id":"ev2","legal_hold":false,"outcome":"ok","phase":"event",'
    '"purpose":null,"reasons":[],"request_id":null,"resources":[],"severity":"info",'
    '"source":{"ip_hash":null,"user_agent_hash":null},"time":"2025-01-02T03:04:05.000000Z",'
    '"v":1}'
)


# Both pinned events with their bodies, for each test taking (event, body).
each_pinned_event = pytest.mark.parametrize(
    ("event", "body"), [(FULL, FULL_BODY), (BARE, BARE_BODY)]
)


@each_pinned_event
def test_body_is_exactly_format_version_1(event: AuditEvent, body: str) -> None:
    """A known event encodes to exactly these bytes (every field present, sorted, compact)."""
    assert encode_body(event) == body.encode("ascii")


@each_pinned_event
def test_record_is_the_parsed_body(event: AuditEvent, body: str) -> None:
    """to_record is the reference definition: it equals the JSON the fast encoder writes."""
    assert to_record(event) == json.loads(body)


@each_pinned_event
def test_decode_rebuilds_the_event_from_bytes_or_text(event: AuditEvent, body: str) -> None:
    """decode_body accepts the stored text or its bytes and rebuilds an equal event."""
    assert decode_body(body) == event
    assert decode_body(body.encode("ascii")) == event


def test_version_constants() -> None:
    """Format version 1 is the single byte 0x01."""
    assert (FORMAT_VERSION, VERSION_PREFIX) == (1, b"\x01")


@pytest.mark.parametrize(
    ("seq", "seq_bytes"),
    [
        (0, b"\x00" * 8),
        (1, b"\x00" * 7 + b"\x01"),
        (2**40 + 2, b"\x00\x00\x01\x00\x00\x00\x00\x02"),
    ],
)
def test_canonical_bytes_are_version_seq_body(seq: int, seq_bytes: bytes) -> None:
    """canonical_bytes = 0x01 || seq as 8-byte big-endian || body, nothing else."""
    assert canonical_bytes(seq, b'{"a":1}') == b"\x01" + seq_bytes + b'{"a":1}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05.000000Z"),
        (datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=UTC), "2025-01-02T03:04:05.000007Z"),
        (datetime(2025, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2))),
         "2025-01-01T23:00:00.000000Z"),
        (datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "0999-12-31T23:59:59.999999Z"),
    ],
)  # fmt: skip
def test_format_time_is_fixed_width_utc(value: datetime, text: str) -> None:
    """Times are UTC, microseconds always written, 27 characters, so text order is time order."""
    assert format_time(value) == text
    assert len(text) == 27


@pytest.fixture
def far_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone set to UTC+05:30 for the test, then restored."""
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_local_zone")
def test_format_time_ignores_the_local_time_zone() -> None:
    """Whatever the machine's zone, the text is UTC (a local-time encoding would break chains)."""
    assert time.localtime(0).tm_gmtoff == 5 * 3600 + 1800
    assert format_time(WHEN) == "2025-03-01T12:30:45.123456Z"
    west = WHEN.astimezone(timezone(timedelta(hours=-7)))
    assert format_time(west) == "2025-03-01T12:30:45.123456Z"


def test_parse_time_inverts_format_time() -> None:
    """parse_time reads the stored text back as the same aware UTC instant."""
    parsed = parse_time("2025-01-01T23:00:00.000001Z")
    assert parsed == datetime(2025, 1, 1, 23, 0, 0, 1, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)
    local = parse_time("2025-01-02T01:00:00+02:00")
    assert local.tzinfo is UTC
    assert local == datetime(2025, 1, 1, 23, tzinfo=UTC)


def test_encode_refuses_anything_but_an_event() -> None:
    """encode_body of a lookalike raises InvalidEventError naming the 'event' field."""
    with pytest.raises(InvalidEventError) as caught:
        encode_body(to_record(FULL))  # type: ignore[arg-type]
    assert caught.value.field_name == "event"
    assert caught.value.problem == "expected an AuditEvent, got dict"


def _record(**changes: Any) -> dict[str, Any]:
    record = to_record(FULL)
    for key, value in changes.items():
        if value is _DROP:
            del record[key]
        else:
            record[key] = value
    return record


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"v": 2}, "v", "unknown body format version 2"),
        ({"v": _DROP}, "v", "unknown body format version None"),
        ({"v": "1"}, "v", "unknown body format version '1'"),
        ({"actor": _DROP}, "body", "not a version-1 event: 'actor'"),
        ({"time": _DROP}, "body", "not a version-1 event: 'time'"),
        ({"source": None}, "body",
         "not a version-1 event: 'NoneType' object is not subscriptable"),
        ({"action": "gmail.nothing"}, "body",
         "not a version-1 event: 'gmail.nothing' is not a valid Action"),
        ({"time": "yesterday"}, "body",
         "not a version-1 event: Invalid isoformat string: 'yesterday'"),
        ({"purpose": "fun"}, "body", "not a version-1 event: 'fun' is not a valid Purpose"),
    ],
)  # fmt: skip
def test_from_record_refuses_a_malformed_body(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    """A body of another version, a missing key or a bad value is refused with its cause."""
    with pytest.raises(InvalidEventError) as caught:
        from_record(_record(**changes))
    assert (caught.value.field_name, caught.value.problem) == (field, problem)


def test_from_record_keeps_the_event_validation_error() -> None:
    """A value the event constructor refuses keeps the constructor's field name (not 'body')."""
    with pytest.raises(InvalidEventError) as caught:
        from_record(_record(actor={"id": "has space", "kind": "user"}))
    assert caught.value.field_name == "actor.id"


def test_from_record_reads_every_field() -> None:
    """Each field of the record reaches the rebuilt event (the null variants too)."""
    assert from_record(to_record(FULL)) == FULL
    assert from_record(to_record(BARE)) == BARE
    record = _record(basis=None, purpose=None, resources=[], source={"ip_hash": None,
                     "user_agent_hash": None})  # fmt: skip
    rebuilt = from_record(record)
    assert (rebuilt.basis, rebuilt.purpose, rebuilt.resources, rebuilt.source) == (
        None, None, (), Source(),
    )  # fmt: skip
