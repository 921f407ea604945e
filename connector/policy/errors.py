"""Errors of the policy layer.

ConnectorError
└── PolicyError
    ├── AccessDenied            the policy refused; carries the verdict (rule + every reason)
    ├── AuditUnavailableError   the audit log could not be written: nothing happens
    ├── PolicyInputError        a consent or access request is malformed (ids, durations, ranges)
    └── PolicyRecordNotFoundError    no consent / access request with that id
"""

from __future__ import annotations

from connector.errors import ConnectorError
from connector.policy.rules import Deny


class PolicyError(ConnectorError):
    """Base of the policy layer's errors."""


class AccessDenied(PolicyError):  # noqa: N818 - the name callers catch, per the gate's contract
    def __init__(self, verdict: Deny, access_id: str | None = None) -> None:
        codes = ", ".join(verdict.reasons)
        super().__init__(f"access denied by rule {verdict.rule}: {codes}")
        self.verdict = verdict
        self.access_id = access_id  # links the caller's error to the audit events

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.verdict.reasons)


class AuditUnavailableError(PolicyError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the audit log could not record this access ({detail}); nothing was returned. "
            "Retry once the audit store is reachable."
        )


class PolicyInputError(PolicyError, ValueError):
    """A consent or access request that cannot be stored as asked."""


class PolicyRecordNotFoundError(PolicyError, LookupError):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"no {kind} {record_id}")
        self.kind = kind
        self.record_id = record_id
