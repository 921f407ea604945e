"""Map every exception a handler can raise to a problem response (RFC 9457), by class.

`PROBLEMS` is walked along the exception's MRO, so the most specific class listed wins and a
new subclass inherits its parent's problem type. Gmail's classes come from
`connector.gmail.errors` (importable by anyone; only the gate calls the client).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from audit.event import InvalidEventError
from connector import errors as e
from connector.db import is_unavailable
from connector.gmail import errors as g
from connector.web.problems import ProblemError, ProblemType

_HTTP: Mapping[int, tuple[ProblemType, str | None]] = {
    400: (ProblemType.MALFORMED_REQUEST, None),
    404: (ProblemType.NOT_FOUND, "no such endpoint; see /openapi.json"),
    405: (
        ProblemType.METHOD_NOT_ALLOWED,
        "this endpoint does not accept that method; see /openapi.json",
    ),
    413: (ProblemType.PAYLOAD_TOO_LARGE, "the request body is larger than this service accepts"),
    415: (ProblemType.UNSUPPORTED_MEDIA_TYPE, None),
}

Builder = Callable[[BaseException], ProblemError]
_RETRY_GMAIL = {"Retry-After": "5"}
RETRY_UNAVAILABLE = 5  # seconds, for both stores (audit log, connector database)


def _gmail_reason(exc: BaseException) -> dict[str, str]:
    reason = getattr(exc, "reason", None)
    return {"gmail_reason": reason} if isinstance(reason, str) else {}


def _rate_limited(exc: BaseException) -> ProblemError:
    retry_after = getattr(exc, "retry_after", None)
    wait = max(1, round(retry_after)) if isinstance(retry_after, int | float) else 1
    return ProblemError(
        ProblemType.RATE_LIMITED, f"Gmail's per-user limit was reached; retry after {wait} s",
        extra=_gmail_reason(exc), headers={"Retry-After": str(wait)},
    )  # fmt: skip


def _sending_paused(exc: BaseException) -> ProblemError:
    """Gmail's mail-sending limit: no send until the time Gmail named, hours away maybe."""
    assert isinstance(exc, g.SendingPausedError)
    wait = max(1, round(exc.retry_after or 1))
    until = exc.until.isoformat().replace("+00:00", "Z")
    return ProblemError(
        ProblemType.RATE_LIMITED,
        f"Gmail's mail-sending limit was reached: sending is paused for this account until "
        f"{until}; reading and organizing still work",
        extra={**_gmail_reason(exc), "sending_paused_until": until},
        headers={"Retry-After": str(wait)},
    )  # fmt: skip


def _queue_too_long(exc: BaseException) -> ProblemError:
    assert isinstance(exc, g.QuotaWaitExceededError)
    return ProblemError(
        ProblemType.RATE_LIMITED, str(exc), extra=_gmail_reason(exc),
        headers={"Retry-After": str(exc.retry_after)},
    )  # fmt: skip


def _access_denied(exc: BaseException) -> ProblemError:
    assert isinstance(exc, e.AccessDenied)
    return ProblemError(
        ProblemType.ACCESS_DENIED,
        f"refused by rule {exc.verdict.rule}: {', '.join(exc.reasons)}. "
        "The attempt was recorded in the audit log.",
        extra={"rule": exc.verdict.rule, "reasons": list(exc.reasons), "access_id": exc.access_id},
    )


def _needs_relink(exc: BaseException) -> ProblemError:
    assert isinstance(exc, e.NeedsRelinkError)
    return ProblemError(
        ProblemType.NEEDS_RELINK,
        f"{exc}. Start a new link with POST /v1/accounts/{exc.account_id}/link "
        "and approve access on Google's consent page.",
        extra={"account_id": exc.account_id},
    )


def _scope_not_granted(exc: BaseException) -> ProblemError:
    assert isinstance(exc, e.ScopeNotGrantedError)
    grant = {"method": "POST", "href": f"/v1/accounts/{exc.account_id}/features",
             "body": {"features": [exc.feature]}}  # fmt: skip
    return ProblemError(
        ProblemType.SCOPE_NOT_GRANTED, f"{exc}; to turn it on: POST {grant['href']}",
        extra={"scope": exc.scope, "feature": exc.feature, "account_id": exc.account_id,
               "grant": grant},
    )  # fmt: skip


def _link_failed(exc: BaseException) -> ProblemError:
    assert isinstance(exc, e.LinkError)
    return ProblemError(ProblemType.LINK_FAILED, str(exc), extra={"reason": exc.reason})


def _send_unknown(exc: BaseException) -> ProblemError:
    message_id = getattr(exc, "message_id", None)
    return ProblemError(
        ProblemType.SEND_OUTCOME_UNKNOWN,
        "the message may have been sent; check the Sent folder before sending again",
        extra={"rfc822_message_id": message_id} if isinstance(message_id, str) else {},
    )


def _invalid_id(exc: BaseException) -> ProblemError:
    assert isinstance(exc, InvalidEventError)
    return ProblemError(
        ProblemType.INVALID_ID, f"{exc.field_name} is not an identifier of the allowed form"
    )


def _fixed(kind: ProblemType, detail: str | None = None, *, retry_after: int = 0) -> Builder:
    """A problem whose detail is `detail`, or the exception's own message when None."""
    headers = {"Retry-After": str(retry_after)} if retry_after else {}

    def build(exc: BaseException) -> ProblemError:
        extra = _gmail_reason(exc) if isinstance(exc, g.GmailError) else {}
        return ProblemError(kind, detail or str(exc), extra=extra, headers=headers)

    return build


_gmail_unavailable = _fixed(
    ProblemType.GMAIL_UNAVAILABLE,
    "Gmail did not answer usefully after retries; try again shortly",
    retry_after=5,
)


PROBLEMS: Mapping[type[BaseException], Builder] = {
    # policy
    e.AccessDenied: _access_denied,
    e.AuditUnavailableError: _fixed(ProblemType.AUDIT_UNAVAILABLE, retry_after=RETRY_UNAVAILABLE),
    e.PolicyRecordNotFoundError: _fixed(ProblemType.NOT_FOUND),
    e.PolicyInputError: _fixed(ProblemType.VALIDATION_FAILED),
    InvalidEventError: _invalid_id,
    # accounts
    e.NeedsRelinkError: _needs_relink,
    e.ScopeNotGrantedError: _scope_not_granted,
    e.AccountNotLinkedError: _fixed(ProblemType.ACCOUNT_NOT_LINKED),
    e.LinkTicketError: _fixed(ProblemType.UNAUTHENTICATED),
    e.ReturnUrlNotAllowedError: _fixed(ProblemType.VALIDATION_FAILED),
    e.LinkError: _link_failed,
    e.TokenEndpointError: lambda exc: ProblemError(
        ProblemType.GMAIL_UNAVAILABLE,
        f"Google's token endpoint answered {getattr(exc, 'error', '')!r}; try again shortly",
    ),
    # inbox
    e.IdempotencyConflictError: _fixed(ProblemType.IDEMPOTENCY_KEY_IN_USE, retry_after=1),
    e.IdempotencyMismatchError: _fixed(ProblemType.IDEMPOTENCY_KEY_REUSED),
    e.MessageTooLargeError: _fixed(ProblemType.PAYLOAD_TOO_LARGE),
    e.HeaderInjectionError: _fixed(ProblemType.HEADER_INJECTION),
    e.CompositionError: _fixed(ProblemType.VALIDATION_FAILED),
    # Gmail
    g.NotFoundError: _fixed(
        ProblemType.NOT_FOUND, "Gmail has no such message, thread, draft or attachment"
    ),
    g.RateLimitedError: _rate_limited,
    g.SendingPausedError: _sending_paused,
    g.QuotaWaitExceededError: _queue_too_long,
    g.ServerError: _gmail_unavailable,
    g.NetworkError: _gmail_unavailable,
    g.AuthError: _fixed(
        ProblemType.NEEDS_RELINK,
        "Gmail refused the account's authorization; link the account again",
    ),
    g.PermissionDeniedError: _fixed(
        ProblemType.SCOPE_NOT_GRANTED,
        "Gmail refused: a permission this feature needs was not granted; link the account "
        "again and tick that permission on Google's consent page",
    ),
    g.InvalidRequestError: _fixed(ProblemType.GMAIL_REJECTED, "Gmail refused the request as built"),
    g.SendOutcomeUnknownError: _send_unknown,
}


_database_unavailable = _fixed(
    ProblemType.DATABASE_UNAVAILABLE,
    "the connector database cannot be reached right now; nothing was changed or returned. "
    "Try again shortly",
    retry_after=RETRY_UNAVAILABLE,
)


def to_problem(exc: BaseException) -> ProblemError | None:
    """The problem for a known exception, or None (an internal error)."""
    if isinstance(exc, ProblemError):
        return exc
    if is_unavailable(exc):  # driver classes, not ours: recognised by what they wrap
        return _database_unavailable(exc)
    if isinstance(exc, web.HTTPException):
        known = _HTTP.get(exc.status)
        if known is None:
            return None
        kind, detail = known
        # 405 carries Allow (RFC 9110 15.5.6): the methods this resource does accept.
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return ProblemError(kind, detail or exc.text or exc.reason, headers=headers)
    for cls in type(exc).__mro__:
        build = PROBLEMS.get(cls)
        if build is not None:
            return build(exc)
    return None
