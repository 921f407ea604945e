"""RFC 9457 problem details: every error the service returns is one of these types.

Each type has a stable URI (`https://connector.dev/problems/<slug>`), a fixed title and status;
`detail` says what happened and what to do next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

PROBLEM_BASE = "https://connector.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class ProblemType(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    ROLE_NOT_PERMITTED = "role-not-permitted"
    ACCESS_DENIED = "access-denied"
    NEEDS_RELINK = "needs-relink"
    SCOPE_NOT_GRANTED = "scope-not-granted"
    ACCOUNT_NOT_LINKED = "account-not-linked"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    MALFORMED_REQUEST = "malformed-request"
    HEADER_INJECTION = "header-injection"
    INVALID_ID = "invalid-id"
    VALIDATION_FAILED = "validation-failed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    REQUEST_HEADERS_TOO_LARGE = "request-headers-too-large"
    INVALID_PAGE_TOKEN = "invalid-page-token"
    RATE_LIMITED = "rate-limited"
    GMAIL_UNAVAILABLE = "gmail-unavailable"
    GMAIL_REJECTED = "gmail-rejected"
    SEND_OUTCOME_UNKNOWN = "send-outcome-unknown"
    AUDIT_UNAVAILABLE = "audit-unavailable"
    DATABASE_UNAVAILABLE = "database-unavailable"
    CONFLICT = "conflict"
    IDEMPOTENCY_KEY_IN_USE = "idempotency-key-in-use"
    IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
    LINK_FAILED = "link-failed"
    WEBHOOKS_DISABLED = "webhooks-disabled"
    INTERNAL = "internal-error"

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.value


@dataclass(frozen=True, slots=True)
class ProblemSpec:
    status: int
    title: str


SPECS: Mapping[ProblemType, ProblemSpec] = {
    ProblemType.UNAUTHENTICATED: ProblemSpec(401, "Authentication required"),
    ProblemType.ROLE_NOT_PERMITTED: ProblemSpec(403, "Your role may not use this endpoint"),
    ProblemType.ACCESS_DENIED: ProblemSpec(403, "Access denied by the Limited Use policy"),
    ProblemType.NEEDS_RELINK: ProblemSpec(409, "The Gmail account needs relinking"),
    ProblemType.SCOPE_NOT_GRANTED: ProblemSpec(403, "A Gmail permission was not granted"),
    ProblemType.ACCOUNT_NOT_LINKED: ProblemSpec(404, "No such linked Gmail account"),
    ProblemType.NOT_FOUND: ProblemSpec(404, "Not found"),
    ProblemType.METHOD_NOT_ALLOWED: ProblemSpec(405, "Method not allowed"),
    ProblemType.MALFORMED_REQUEST: ProblemSpec(400, "Malformed request"),
    ProblemType.HEADER_INJECTION: ProblemSpec(400, "Line break in a header value"),
    ProblemType.INVALID_ID: ProblemSpec(400, "Invalid identifier"),
    ProblemType.VALIDATION_FAILED: ProblemSpec(422, "Request failed validation"),
    ProblemType.UNSUPPORTED_MEDIA_TYPE: ProblemSpec(415, "Unsupported media type"),
    ProblemType.PAYLOAD_TOO_LARGE: ProblemSpec(413, "Request body too large"),
    ProblemType.REQUEST_HEADERS_TOO_LARGE: ProblemSpec(431, "Request header fields too large"),
    ProblemType.INVALID_PAGE_TOKEN: ProblemSpec(400, "Invalid page token"),
    ProblemType.RATE_LIMITED: ProblemSpec(429, "Gmail rate limit reached"),
    ProblemType.GMAIL_UNAVAILABLE: ProblemSpec(503, "Gmail is unavailable"),
    ProblemType.GMAIL_REJECTED: ProblemSpec(502, "Gmail rejected the request"),
    ProblemType.SEND_OUTCOME_UNKNOWN: ProblemSpec(502, "The send outcome is unknown"),
    ProblemType.AUDIT_UNAVAILABLE: ProblemSpec(503, "The audit log is unavailable"),
    ProblemType.DATABASE_UNAVAILABLE: ProblemSpec(503, "The connector database is unavailable"),
    ProblemType.CONFLICT: ProblemSpec(409, "Conflict with the current state"),
    ProblemType.IDEMPOTENCY_KEY_IN_USE: ProblemSpec(409, "A request with this key is running"),
    ProblemType.IDEMPOTENCY_KEY_REUSED: ProblemSpec(
        422, "Idempotency-Key used for another request"
    ),
    ProblemType.LINK_FAILED: ProblemSpec(400, "Linking the Gmail account failed"),
    ProblemType.WEBHOOKS_DISABLED: ProblemSpec(409, "Webhook delivery is not configured"),
    ProblemType.INTERNAL: ProblemSpec(500, "Internal error"),
}


class ProblemError(Exception):
    """Raise from a handler or service adapter; the middleware renders it."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return SPECS[self.kind].status


def problem_body(
    kind: ProblemType, detail: str, *, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    spec = SPECS[kind]
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": spec.title,
        "status": spec.status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    error: ProblemError, *, request_id: str | None = None, instance: str | None = None
) -> web.Response:
    extra = dict(error.extra)
    if request_id is not None:
        extra.setdefault("request_id", request_id)
    body = problem_body(error.kind, error.detail, instance=instance, **extra)
    return web.Response(
        status=error.status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_JSON,
        headers=error.headers,
    )
