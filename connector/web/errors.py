"""Map every exception a handler can raise to a problem response (RFC 9457).

Gmail client errors are recognised by class name: only the gate may import `connector.gmail`,
so the web layer matches the documented exception tree without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from audit.event import InvalidEventError
from connector.accounts.endpoints import TokenEndpointError
from connector.accounts.oauth import LinkError
from connector.errors import (
    AccountNotLinkedError,
    CompositionError,
    IdempotencyConflictError,
    IdempotencyMismatchError,
    MessageTooLargeError,
    NeedsRelinkError,
    ScopeNotGrantedError,
)
from connector.policy import (
    AccessDenied,
    AuditUnavailableError,
    PolicyInputError,
    PolicyRecordNotFoundError,
)
from connector.web.problems import ProblemError, ProblemType

_HTTP: Mapping[int, ProblemType] = {
    400: ProblemType.MALFORMED_REQUEST,
    404: ProblemType.NOT_FOUND,
    405: ProblemType.METHOD_NOT_ALLOWED,
    413: ProblemType.PAYLOAD_TOO_LARGE,
    415: ProblemType.UNSUPPORTED_MEDIA_TYPE,
}

# connector.gmail.errors, by class name (most specific first along the MRO).
_GMAIL: Mapping[str, ProblemType] = {
    "NotFoundError": ProblemType.NOT_FOUND,
    "RateLimitedError": ProblemType.RATE_LIMITED,
    "ServerError": ProblemType.GMAIL_UNAVAILABLE,
    "NetworkError": ProblemType.GMAIL_UNAVAILABLE,
    "AuthError": ProblemType.NEEDS_RELINK,
    "PermissionDeniedError": ProblemType.SCOPE_NOT_GRANTED,
    "InvalidRequestError": ProblemType.GMAIL_REJECTED,
    "SendOutcomeUnknownError": ProblemType.SEND_OUTCOME_UNKNOWN,
}


def _gmail_problem(exc: Exception) -> ProblemError | None:
    for cls in type(exc).__mro__:
        kind = _GMAIL.get(cls.__name__)
        if kind is None:
            continue
        if not cls.__module__.startswith("connector.gmail"):
            return None
        return _gmail_detail(kind, exc)
    return None


def _gmail_detail(kind: ProblemType, exc: Exception) -> ProblemError:
    reason = getattr(exc, "reason", None)
    extra = {"gmail_reason": reason} if isinstance(reason, str) else {}
    if kind is ProblemType.NOT_FOUND:
        return ProblemError(kind, "Gmail has no such message, thread, draft or attachment")
    if kind is ProblemType.RATE_LIMITED:
        retry_after = getattr(exc, "retry_after", None)
        wait = max(1, round(retry_after)) if isinstance(retry_after, int | float) else 1
        return ProblemError(
            kind,
            f"Gmail's per-user limit was reached; retry after {wait} s",
            extra=extra,
            headers={"Retry-After": str(wait)},
        )
    if kind is ProblemType.GMAIL_UNAVAILABLE:
        return ProblemError(
            kind, "Gmail did not answer usefully after retries; try again shortly",
            extra=extra, headers={"Retry-After": "5"},
        )  # fmt: skip
    if kind is ProblemType.NEEDS_RELINK:
        return ProblemError(
            kind, "Gmail refused the account's authorization; link the account again",
            extra=extra,
        )  # fmt: skip
    if kind is ProblemType.SCOPE_NOT_GRANTED:
        return ProblemError(
            kind,
            "Gmail refused: a permission this feature needs was not granted; link the account "
            "again and tick that permission on Google's consent page",
            extra=extra,
        )
    if kind is ProblemType.SEND_OUTCOME_UNKNOWN:
        message_id = getattr(exc, "message_id", None)
        return ProblemError(
            kind,
            "the message may have been sent; check the Sent folder before sending again",
            extra={"rfc822_message_id": message_id} if isinstance(message_id, str) else {},
        )
    return ProblemError(kind, "Gmail refused the request as built", extra=extra)


def to_problem(exc: Exception) -> ProblemError | None:
    """The problem for a known exception, or None (an internal error)."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, web.HTTPException):
        kind = _HTTP.get(exc.status)
        if kind is None:
            return None
        detail = exc.text or exc.reason
        if kind is ProblemType.PAYLOAD_TOO_LARGE:
            detail = "the request body is larger than this service accepts"
        elif kind is ProblemType.NOT_FOUND:
            detail = "no such endpoint; see /openapi.json"
        elif kind is ProblemType.METHOD_NOT_ALLOWED:
            detail = "this endpoint does not accept that method; see /openapi.json"
        return ProblemError(kind, detail)
    if isinstance(exc, AccessDenied):
        return ProblemError(
            ProblemType.ACCESS_DENIED,
            f"refused by rule {exc.verdict.rule}: {', '.join(exc.reasons)}. "
            "The attempt was recorded in the audit log.",
            extra={"rule": exc.verdict.rule, "reasons": list(exc.reasons),
                   "access_id": exc.access_id},
        )  # fmt: skip
    if isinstance(exc, IdempotencyConflictError):
        return ProblemError(
            ProblemType.IDEMPOTENCY_KEY_IN_USE, str(exc), headers={"Retry-After": "1"}
        )
    if isinstance(exc, IdempotencyMismatchError):
        return ProblemError(ProblemType.IDEMPOTENCY_KEY_REUSED, str(exc))
    if isinstance(exc, AuditUnavailableError):
        return ProblemError(ProblemType.AUDIT_UNAVAILABLE, str(exc), headers={"Retry-After": "5"})
    if isinstance(exc, NeedsRelinkError):
        return ProblemError(
            ProblemType.NEEDS_RELINK,
            f"{exc}. Start a new link with POST /v1/accounts/{exc.account_id}/link "
            "and approve access on Google's consent page.",
            extra={"account_id": exc.account_id},
        )
    if isinstance(exc, ScopeNotGrantedError):
        return ProblemError(
            ProblemType.SCOPE_NOT_GRANTED,
            str(exc),
            extra={"scope": exc.scope, "feature": exc.feature, "account_id": exc.account_id},
        )
    if isinstance(exc, LinkError):
        return ProblemError(ProblemType.LINK_FAILED, str(exc), extra={"reason": exc.reason})
    if isinstance(exc, TokenEndpointError):
        return ProblemError(
            ProblemType.GMAIL_UNAVAILABLE,
            f"Google's token endpoint answered {exc.error!r}; try again shortly",
        )
    if isinstance(exc, AccountNotLinkedError):
        return ProblemError(ProblemType.ACCOUNT_NOT_LINKED, str(exc))
    if isinstance(exc, MessageTooLargeError):
        return ProblemError(ProblemType.PAYLOAD_TOO_LARGE, str(exc))
    if isinstance(exc, CompositionError):
        kind = (
            ProblemType.HEADER_INJECTION
            if "line break" in str(exc)
            else ProblemType.VALIDATION_FAILED
        )
        return ProblemError(kind, str(exc))
    if isinstance(exc, PolicyRecordNotFoundError):
        return ProblemError(ProblemType.NOT_FOUND, str(exc))
    if isinstance(exc, PolicyInputError):
        return ProblemError(ProblemType.VALIDATION_FAILED, str(exc))
    if isinstance(exc, InvalidEventError):
        return ProblemError(
            ProblemType.INVALID_ID, f"{exc.field_name} is not an identifier of the allowed form"
        )
    return _gmail_problem(exc)
