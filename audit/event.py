"""The audit event: identifiers only, never content.

Every free-form field is constrained to an identifier alphabet (no spaces, no '@', bounded length),
so a subject, body, snippet, file name or raw e-mail address cannot be stored: the constructor
refuses it before it touches the chain. Where an address or query must be correlatable, callers
store a keyed hash (see `audit.hashing.keyed_hash`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Generic, TypeVar

from audit import vocab

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
# Gmail attachment ids are long URL-safe base64 strings.
RESOURCE_ID = re.compile(r"^[A-Za-z0-9_\-.:=]{1,1024}$")
REASON = re.compile(r"^[a-z0-9][a-z0-9_.:\-]{0,95}$")
HEX_DIGEST = re.compile(r"^[0-9a-f]{16,128}$")
MAX_RESOURCES = 1000
MAX_REASONS = 32

_Kind = TypeVar("_Kind", bound=StrEnum)


class InvalidEventError(ValueError):
    """An event with a missing or invalid field; raised before anything is written."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"invalid audit event field {field_name!r}: {problem}")
        self.field_name = field_name
        self.problem = problem


def _check(pattern: re.Pattern[str], value: object, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidEventError(name, f"expected a string, got {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise InvalidEventError(name, f"{value[:40]!r} is not an identifier of the allowed form")


def _check_enum(enum_type: type, value: object, name: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, enum_type):
        raise InvalidEventError(name, f"expected {enum_type.__name__}, got {value!r}")


@dataclass(frozen=True, slots=True)
class _Reference(Generic[_Kind]):
    """A checked (kind, id) pair: `kind` a member of the subclass's `_kinds`, `id` of its `_ids`.

    A subclass names its vocabulary, its id alphabet and the field its errors name."""

    kind: _Kind
    id: str

    _kinds: ClassVar[type[StrEnum]]
    _ids: ClassVar[re.Pattern[str]]
    _field: ClassVar[str]

    def __post_init__(self) -> None:
        # The valid case inline (once or more per event); the checks' messages only on failure.
        kind, id_ = self.kind, self.id
        if not (
            isinstance(kind, self._kinds) and isinstance(id_, str) and self._ids.fullmatch(id_)
        ):
            _check_enum(self._kinds, kind, f"{self._field}.kind")
            _check(self._ids, id_, f"{self._field}.id")


@dataclass(frozen=True, slots=True)
class Actor(_Reference[vocab.ActorKind]):
    _kinds, _ids, _field = vocab.ActorKind, IDENTIFIER, "actor"


@dataclass(frozen=True, slots=True)
class ResourceRef(_Reference[vocab.ResourceKind]):
    _kinds, _ids, _field = vocab.ResourceKind, RESOURCE_ID, "resources"


@dataclass(frozen=True, slots=True)
class Basis(_Reference[vocab.BasisKind]):
    _kinds, _ids, _field = vocab.BasisKind, IDENTIFIER, "basis"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from, as keyed hashes (an IP address is personal data)."""

    ip_hash: str | None = None
    user_agent_hash: str | None = None

    def __post_init__(self) -> None:
        for name in ("ip_hash", "user_agent_hash"):
            value = getattr(self, name)
            if value is not None:
                _check(HEX_DIGEST, value, f"source.{name}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    # 128 random bits as 32 hex digits (the shape of uuid4().hex, without building a UUID)
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. `seq`, `prev_hash` and `hash` are assigned by the store."""

    actor: Actor
    action: vocab.Action
    decision: vocab.Decision
    outcome: vocab.Outcome
    account_id: str | None = None
    purpose: vocab.Purpose | None = None
    basis: Basis | None = None
    resources: tuple[ResourceRef, ...] = ()
    reasons: tuple[str, ...] = ()
    phase: vocab.Phase = vocab.Phase.EVENT
    severity: vocab.Severity = vocab.Severity.INFO
    error_code: str | None = None  # e.g. a Gmail reason like "rateLimitExceeded", or an HTTP status
    access_id: str = field(default_factory=_new_id)  # shared by an access's decision and outcome
    request_id: str | None = None
    legal_hold: bool = False  # hidden from the owner's access history while the hold lasts
    source: Source = field(default_factory=Source)
    event_id: str = field(default_factory=_new_id)
    time: datetime = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        if not isinstance(self.actor, Actor):
            raise InvalidEventError("actor", "expected an Actor")
        _check_enum(vocab.Action, self.action, "action")
        _check_enum(vocab.Decision, self.decision, "decision")
        _check_enum(vocab.Outcome, self.outcome, "outcome")
        _check_enum(vocab.Phase, self.phase, "phase")
        _check_enum(vocab.Severity, self.severity, "severity")
        _check_enum(vocab.Purpose, self.purpose, "purpose", optional=True)
        if self.account_id is not None:
            _check(IDENTIFIER, self.account_id, "account_id")
        if self.basis is not None and not isinstance(self.basis, Basis):
            raise InvalidEventError("basis", "expected a Basis")
        if not isinstance(self.resources, tuple) or not all(
            isinstance(r, ResourceRef) for r in self.resources
        ):
            raise InvalidEventError("resources", "expected a tuple of ResourceRef")
        if len(self.resources) > MAX_RESOURCES:
            raise InvalidEventError("resources", f"more than {MAX_RESOURCES} resources")
        if not isinstance(self.reasons, tuple) or len(self.reasons) > MAX_REASONS:
            raise InvalidEventError("reasons", f"expected a tuple of at most {MAX_REASONS} codes")
        for reason in self.reasons:
            _check(REASON, reason, "reasons")
        if self.error_code is not None:
            _check(IDENTIFIER, self.error_code, "error_code")
        _check(IDENTIFIER, self.access_id, "access_id")
        _check(IDENTIFIER, self.event_id, "event_id")
        if self.request_id is not None:
            _check(IDENTIFIER, self.request_id, "request_id")
        if not isinstance(self.legal_hold, bool):
            raise InvalidEventError("legal_hold", "expected a bool")
        if not isinstance(self.source, Source):
            raise InvalidEventError("source", "expected a Source")
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise InvalidEventError("time", "expected a timezone-aware datetime")
        if self.time.utcoffset() != UTC.utcoffset(None):
            raise InvalidEventError("time", "expected UTC")
        if self.decision is vocab.Decision.DENY and not self.reasons:
            raise InvalidEventError("reasons", "a denial must carry at least one reason")


@dataclass(frozen=True, slots=True)
class AppendReceipt:
    """Returned by `append()` only once the event is durably committed."""

    seq: int
    event_id: str
    hash: str
