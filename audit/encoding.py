"""Canonical, versioned encoding of an audit event: the bytes that are hashed and stored.

Choice (format version 1):

    canonical_bytes(seq, event) = 0x01 || seq as 8-byte big-endian || body
    body = JSON object, keys sorted, no whitespace, ASCII only, every field always present
           (absent values are `null`), time as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds)

JSON keeps the stored body readable by any reviewer's tools; the leading version byte lets a
future format coexist with old rows; `seq` sits outside the JSON so the writer can encode the
event before it knows its position. `body` is stored verbatim, so verification hashes stored
bytes and never re-encodes.

`encode_body` builds the JSON by string formatting instead of `json.dumps`: every string field
of an `AuditEvent` is already restricted by its constructor to an alphabet that needs no JSON
escaping (no quotes, backslashes or control characters), and this is ~5x faster on the hot path.
A property test pins `encode_body(e) == json.dumps(to_record(e), sort_keys=True, ...)`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from audit import vocab
from audit.event import Actor, AuditEvent, Basis, InvalidEventError, ResourceRef, Source

FORMAT_VERSION = 1
VERSION_PREFIX = bytes([FORMAT_VERSION])


# Text up to the seconds of recently formatted UTC seconds. Events come thousands to a
# second, so most need only their microseconds formatted; bounded by starting over.
_seconds: dict[tuple[int, int, int, int, int, int], str] = {}
_SECONDS_KEPT = 4096


def format_time(value: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order (the store indexes it).

    `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Once per audit event on the append path, where a UTC time
    of a second seen recently costs a dict lookup and its microseconds (isoformat of the
    whole value, several times more)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    key = (value.second, value.minute, value.hour, value.day, value.month, value.year)
    text = _seconds.get(key)
    if text is None:
        if len(_seconds) >= _SECONDS_KEPT:
            _seconds.clear()
        text = _seconds[key] = value.replace(microsecond=0, tzinfo=None).isoformat()
    return f"{text}.{value.microsecond:06d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def encode_body(event: AuditEvent) -> bytes:
    """The canonical JSON body of `event` (keys in sorted order; see the module docstring)."""
    return encode_text(event)[0].encode("ascii")


def _quoted(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def encode_text(event: AuditEvent) -> tuple[str, str]:
    """The canonical body as text, and the event's time as it stands in the body.

    The append path's encoder, run once per event: one f-string over local names, enum values
    through `_value_` (the `value` property costs several times more on Python 3.11), and the
    time formatted once for the body and for the index column."""
    if not isinstance(event, AuditEvent):
        raise InvalidEventError("event", f"expected an AuditEvent, got {type(event).__name__}")
    actor, basis, source, purpose = event.actor, event.basis, event.source, event.purpose
    when = format_time(event.time)
    resources = (
        ",".join([f'{{"id":"{r.id}","kind":"{r.kind._value_}"}}' for r in event.resources])
        if event.resources
        else ""
    )
    reasons = '"' + '","'.join(event.reasons) + '"' if event.reasons else ""
    basis_text = "null" if basis is None else f'{{"id":"{basis.id}","kind":"{basis.kind._value_}"}}'
    text = (
        f'{{"access_id":"{event.access_id}","account_id":{_quoted(event.account_id)},'
        f'"action":"{event.action._value_}",'
        f'"actor":{{"id":"{actor.id}","kind":"{actor.kind._value_}"}},'
        f'"basis":{basis_text},"decision":"{event.decision._value_}",'
        f'"error_code":{_quoted(event.error_code)},"event_id":"{event.event_id}",'
        f'"legal_hold":{"true" if event.legal_hold else "false"},'
        f'"outcome":"{event.outcome._value_}","phase":"{event.phase._value_}",'
        f'"purpose":{"null" if purpose is None else _quoted(purpose._value_)},'
        f'"reasons":[{reasons}],"request_id":{_quoted(event.request_id)},'
        f'"resources":[{resources}],"severity":"{event.severity._value_}",'
        f'"source":{{"ip_hash":{_quoted(source.ip_hash)},'
        f'"user_agent_hash":{_quoted(source.user_agent_hash)}}},'
        f'"time":"{when}","v":{FORMAT_VERSION}}}'
    )
    return text, when


def canonical_bytes(seq: int, body: bytes) -> bytes:
    return VERSION_PREFIX + seq.to_bytes(8, "big") + body


def to_record(event: AuditEvent) -> dict[str, Any]:
    """The event as plain JSON values: the reference definition `encode_body` must match."""

    def pair(value: Actor | Basis | ResourceRef | None) -> dict[str, str] | None:
        return None if value is None else {"id": value.id, "kind": value.kind.value}

    return {
        "access_id": event.access_id,
        "account_id": event.account_id,
        "action": event.action.value,
        "actor": pair(event.actor),
        "basis": pair(event.basis),
        "decision": event.decision.value,
        "error_code": event.error_code,
        "event_id": event.event_id,
        "legal_hold": event.legal_hold,
        "outcome": event.outcome.value,
        "phase": event.phase.value,
        "purpose": None if event.purpose is None else event.purpose.value,
        "reasons": list(event.reasons),
        "request_id": event.request_id,
        "resources": [pair(r) for r in event.resources],
        "severity": event.severity.value,
        "source": {
            "ip_hash": event.source.ip_hash,
            "user_agent_hash": event.source.user_agent_hash,
        },
        "time": format_time(event.time),
        "v": FORMAT_VERSION,
    }


def from_record(record: dict[str, Any]) -> AuditEvent:
    """Rebuild (and so re-validate) an event from its record; raises InvalidEventError."""
    try:
        if record.get("v") != FORMAT_VERSION:
            raise InvalidEventError("v", f"unknown body format version {record.get('v')!r}")
        actor = record["actor"]
        basis = record["basis"]
        source = record["source"]
        purpose = record["purpose"]
        return AuditEvent(
            actor=Actor(vocab.ActorKind(actor["kind"]), actor["id"]),
            action=vocab.Action(record["action"]),
            decision=vocab.Decision(record["decision"]),
            outcome=vocab.Outcome(record["outcome"]),
            account_id=record["account_id"],
            purpose=None if purpose is None else vocab.Purpose(purpose),
            basis=None if basis is None else Basis(vocab.BasisKind(basis["kind"]), basis["id"]),
            resources=tuple(
                ResourceRef(vocab.ResourceKind(r["kind"]), r["id"]) for r in record["resources"]
            ),
            reasons=tuple(record["reasons"]),
            phase=vocab.Phase(record["phase"]),
            severity=vocab.Severity(record["severity"]),
            error_code=record["error_code"],
            access_id=record["access_id"],
            request_id=record["request_id"],
            legal_hold=record["legal_hold"],
            source=Source(source["ip_hash"], source["user_agent_hash"]),
            event_id=record["event_id"],
            time=parse_time(record["time"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidEventError):
            raise
        raise InvalidEventError("body", f"not a version-{FORMAT_VERSION} event: {exc}") from exc


def decode_body(body: bytes | str) -> AuditEvent:
    return from_record(json.loads(body))
