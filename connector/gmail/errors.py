"""Errors the Gmail client raises, classified from Google's error envelope.

GmailError                      base: `status` (HTTP, None off the wire), `reason`, `message`
├── ApiError                    Google answered with an error envelope
│   ├── AuthError               401 that survived one forced token refresh
│   ├── PermissionDeniedError   403 that is not a rate limit (e.g. `insufficientPermissions`)
│   ├── NotFoundError           404 (`notFound`; also a stale history.list cursor)
│   ├── InvalidRequestError     400 and other 4xx the caller must fix (`invalidArgument`, ...)
│   ├── RateLimitedError        429, or 403 `userRateLimitExceeded` / `rateLimitExceeded`
│   │   └── SendingPausedError  429 "(Mail sending)": the daily sending limit, until a time
│   └── ServerError             5xx (`backendError`)
├── NetworkError                no usable HTTP answer: refused, reset, timed out, garbled
├── QuotaWaitExceededError      our own per-user quota queue held the call past its bound
└── SendOutcomeUnknownError     a send may have happened and the mailbox search could not tell

`CompositionError` / `MessageTooLargeError` (connector.errors) come from the pure MIME module
`connector.mime`, which callers outside the gate may use; they are re-exported here.

`NeedsRelinkError` (connector.errors) passes through untouched: it is the token source's verdict.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from connector.errors import CompositionError as CompositionError  # noqa: PLC0414 - re-export
from connector.errors import ConnectorError
from connector.errors import MessageTooLargeError as MessageTooLargeError  # noqa: PLC0414
from connector.gmail_facts import RATE_LIMIT_REASONS
from connector.gmail_facts import Reason as Reason  # noqa: PLC0414 - re-export

# "User-rate limit exceeded.  Retry after 2026-12-02T10:00:00.000Z (Mail sending)"
_SENDING_LIMIT = re.compile(r"Retry after (\S+)\s*\(Mail sending\)", re.IGNORECASE)


class GmailError(ConnectorError):
    """Base of every error the Gmail client raises on purpose."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.reason:
            parts.append(f"reason={self.reason}")
        return " | ".join(parts)


class ApiError(GmailError):
    """Google answered with an error envelope."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str | None,
        grpc_status: str | None = None,
        domain: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.grpc_status = grpc_status
        self.domain = domain
        self.retry_after = retry_after


class AuthError(ApiError):
    """The access token was refused even after a forced refresh."""


class PermissionDeniedError(ApiError):
    """Forbidden for a reason retrying cannot fix, typically a scope the user did not grant."""


class NotFoundError(ApiError):
    """The message, thread, draft, label or history cursor does not exist."""


class InvalidRequestError(ApiError):
    """The request itself is wrong (bad id, bad query, too large, ...)."""


class RateLimitedError(ApiError):
    """A per-user or per-project limit was hit; `retry_after` holds Google's hint if any."""


class SendingPausedError(RateLimitedError):
    """Gmail's mail-sending limit: no send for this account until `until` (hours, not seconds).

    Gmail names the time in the message ("Retry after <RFC 3339> (Mail sending)"); the client
    pauses sending for the account until then instead of backing off and retrying.
    """

    def __init__(self, message: str, *, until: datetime, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.until = until


class ServerError(ApiError):
    """Google failed (5xx); retryable for idempotent calls."""


class NetworkError(GmailError):
    """No usable HTTP answer. `request_sent` is False only when the request surely never left."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class QuotaWaitExceededError(GmailError):
    """The call waited `waited` seconds in the mailbox's quota queue without a slot or the
    units it needs; refused before any request left, so it is safe to retry after `retry_after`."""

    def __init__(self, *, waited: float, retry_after: int) -> None:
        super().__init__(
            f"this mailbox has more Gmail requests queued than its quota serves within "
            f"{waited:g} s; retry after {retry_after} s",
            reason="quotaWaitExceeded",
        )
        self.waited = waited
        self.retry_after = retry_after


class SendOutcomeUnknownError(GmailError):
    """A send may have gone out; the `rfc822msgid:` search could not settle it, so no retry."""

    def __init__(self, message: str, *, message_id: str) -> None:
        super().__init__(message)
        self.message_id = message_id


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: Gmail sends seconds; ignore rather than guess
    return max(0.0, seconds)


def sending_resumes_at(message: str) -> datetime | None:
    """The time in Gmail's mail-sending-limit message, or None if `message` is not one."""
    match = _SENDING_LIMIT.search(message)
    if match is None:
        return None
    try:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else {}


def classify(status: int, body: bytes, retry_after: str | None = None) -> ApiError:
    """Map an HTTP error answer (status + Google's envelope) to the typed tree."""
    error = _envelope(body)
    items = error.get("errors")
    first: dict[str, Any] = items[0] if isinstance(items, list) and items else {}
    reason = first.get("reason") if isinstance(first.get("reason"), str) else None
    message = error.get("message") or first.get("message") or f"Gmail answered HTTP {status}"
    kwargs: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "grpc_status": error.get("status") if isinstance(error.get("status"), str) else None,
        "domain": first.get("domain") if isinstance(first.get("domain"), str) else None,
        "retry_after": _parse_retry_after(retry_after),
    }
    cls: type[ApiError]
    until = sending_resumes_at(str(message)) if status == 429 else None
    if until is not None:
        return SendingPausedError(str(message), until=until, **kwargs)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        cls = RateLimitedError
    elif status == 401:
        cls = AuthError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404:
        cls = NotFoundError
    elif status >= 500:
        cls = ServerError
    else:
        cls = InvalidRequestError
    return cls(str(message), **kwargs)


def is_retryable(error: BaseException) -> bool:
    """Whether an idempotent call may be retried after `error` (backoff applies)."""
    return isinstance(error, RateLimitedError | ServerError | NetworkError)
