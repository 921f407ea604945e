"""Gmail and Google OAuth error bodies, in the exact envelopes Google sends.

Shapes follow /work/shared/fixtures/gmail/gmail_error_envelopes.json: every Gmail error carries
`code`, `message`, `errors[]` and `status`, because clients classify on `reason` and `status`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from connector.gmail_facts import Reason as Reason  # noqa: PLC0414 - re-export

MISSING_CREDENTIALS_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INVALID_CREDENTIALS_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
WWW_AUTHENTICATE_INVALID = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
WWW_AUTHENTICATE_MISSING = 'Bearer realm="https://accounts.google.com/"'


_STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class GmailError(Exception):
    """A Gmail API error; handlers raise it and the dispatcher renders the envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: Reason | str,
        *,
        domain: str = "global",
        item_message: str | None = None,
        extra_item: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = str(reason)
        self.domain = domain
        self.item_message = item_message if item_message is not None else message
        self.extra_item = extra_item or {}
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "message": self.item_message,
            "domain": self.domain,
            "reason": self.reason,
        }
        item.update(self.extra_item)
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [item],
                "status": _STATUS_BY_CODE.get(self.code, "UNKNOWN"),
            }
        }


def invalid_id() -> GmailError:
    return GmailError(400, "Invalid id value", Reason.INVALID_ARGUMENT)


def not_found() -> GmailError:
    return GmailError(404, "Requested entity was not found.", Reason.NOT_FOUND)


def invalid_argument(message: str) -> GmailError:
    return GmailError(400, message, Reason.INVALID_ARGUMENT)


def bad_request(message: str) -> GmailError:
    return GmailError(400, message, Reason.BAD_REQUEST)


def missing_credentials() -> GmailError:
    return GmailError(
        401,
        MISSING_CREDENTIALS_MESSAGE,
        Reason.REQUIRED,
        headers={"WWW-Authenticate": WWW_AUTHENTICATE_MISSING},
    )


def invalid_credentials() -> GmailError:
    return GmailError(
        401,
        INVALID_CREDENTIALS_MESSAGE,
        Reason.AUTH_ERROR,
        item_message="Invalid Credentials",
        extra_item={"location": "Authorization", "locationType": "header"},
        headers={"WWW-Authenticate": WWW_AUTHENTICATE_INVALID},
    )


def insufficient_permissions() -> GmailError:
    return GmailError(
        403,
        "Request had insufficient authentication scopes.",
        Reason.INSUFFICIENT_PERMISSIONS,
        item_message="Insufficient Permission",
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
            'error="insufficient_scope"'
        },
    )


def delegation_denied(user_id: str) -> GmailError:
    return GmailError(403, f"Delegation denied for {user_id}", Reason.FORBIDDEN)


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, seconds))}


def rate_limited_429(retry_after: int = 1) -> GmailError:
    return GmailError(
        429, "Resource has been exhausted (e.g. check quota).", Reason.RATE_LIMIT_EXCEEDED,
        headers=_retry_after(retry_after),
    )  # fmt: skip


def sending_limit(until: datetime, now: datetime) -> GmailError:
    """The mail-sending limit: 429 whose message names the RFC 3339 time sending resumes."""
    at = until.astimezone(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return GmailError(
        429, f"User-rate limit exceeded.  Retry after {stamp} (Mail sending)",
        Reason.RATE_LIMIT_EXCEEDED,
        headers=_retry_after(math.ceil((until - now).total_seconds())),
    )  # fmt: skip


def user_rate_limited_403() -> GmailError:
    return GmailError(
        403, "User Rate Limit Exceeded", Reason.USER_RATE_LIMIT_EXCEEDED, domain="usageLimits"
    )


def too_many_concurrent() -> GmailError:
    return GmailError(
        429, "Too many concurrent requests for user.", Reason.RATE_LIMIT_EXCEEDED,
        headers=_retry_after(1),
    )  # fmt: skip


def backend_error(code: int = 500) -> GmailError:
    if code == 503:
        return GmailError(
            503,
            "The service is currently unavailable.",
            Reason.BACKEND_ERROR,
            item_message="Backend Error",
        )
    return GmailError(500, "Backend Error", Reason.BACKEND_ERROR)


def oauth_error(error: str, description: str) -> dict[str, str]:
    """Token/revoke endpoint error body (RFC 6749 5.2 shape, Google's texts)."""
    return {"error": error, "error_description": description}
