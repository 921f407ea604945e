"""What each authenticated route does, in the policy's terms, and the route-level decision.

A route names the `Operation` it performs and the purposes it serves; whether a caller may even
attempt it is the policy's answer (`rules.may_attempt`), not a list of roles kept by hand. A
refusal is recorded (actor, role, route, account) before the 403 goes out. The `roles` each
`RouteSpec` declares for the OpenAPI document are checked against this table by a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from audit.vocab import Purpose
from connector.policy.rules import Verdict, may_attempt
from connector.policy.vocab import Operation
from connector.web.auth import Caller, Role

_O, _P = Operation, Purpose
_FEATURE = frozenset({_P.USER_FEATURE})
_CASEWORK = frozenset({_P.SECURITY, _P.LEGAL})
_SUPPORT = frozenset({_P.CONSENTED_SUPPORT, _P.SECURITY, _P.LEGAL})


@dataclass(frozen=True, slots=True)
class RouteOperation:
    operation: Operation
    purposes: frozenset[Purpose]


def _r(operation: Operation, purposes: frozenset[Purpose] = _FEATURE) -> RouteOperation:
    return RouteOperation(operation, purposes)


_ACCOUNT = "/v1/accounts/{account_id}"
_SUPPORT_ACCOUNT = "/v1/support/accounts/{account_id}"

ROUTE_OPERATIONS: Mapping[tuple[str, str], RouteOperation] = {
    ("POST", "/v1/accounts/link"): _r(_O.ACCOUNT_LINK),
    ("GET", "/v1/accounts"): _r(_O.ACCOUNT_READ),
    ("GET", _ACCOUNT): _r(_O.ACCOUNT_READ),
    ("DELETE", _ACCOUNT): _r(_O.ACCOUNT_UNLINK),
    ("GET", f"{_ACCOUNT}/messages"): _r(_O.METADATA_READ),
    ("GET", f"{_ACCOUNT}/messages/{{message_id}}"): _r(_O.CONTENT_READ),
    ("GET", f"{_ACCOUNT}/threads/{{thread_id}}"): _r(_O.CONTENT_READ),
    ("GET", f"{_ACCOUNT}/messages/{{message_id}}/attachments/{{attachment_id}}"): _r(
        _O.ATTACHMENT_READ
    ),
    ("GET", f"{_ACCOUNT}/drafts"): _r(_O.DRAFT_READ),
    ("POST", f"{_ACCOUNT}/drafts"): _r(_O.DRAFT_WRITE),
    ("GET", f"{_ACCOUNT}/drafts/{{draft_id}}"): _r(_O.DRAFT_READ),
    ("PUT", f"{_ACCOUNT}/drafts/{{draft_id}}"): _r(_O.DRAFT_WRITE),
    ("DELETE", f"{_ACCOUNT}/drafts/{{draft_id}}"): _r(_O.DRAFT_WRITE),
    ("POST", f"{_ACCOUNT}/drafts/{{draft_id}}/send"): _r(_O.MESSAGE_SEND),
    ("POST", f"{_ACCOUNT}/messages/send"): _r(_O.MESSAGE_SEND),
    # organizing and settings (routes_organize); turning a feature on relinks the account
    ("POST", f"{_ACCOUNT}/features"): _r(_O.ACCOUNT_LINK),
    ("GET", f"{_ACCOUNT}/labels"): _r(_O.METADATA_READ),
    ("POST", f"{_ACCOUNT}/labels"): _r(_O.LABEL_WRITE),
    ("PATCH", f"{_ACCOUNT}/labels/{{label_id}}"): _r(_O.LABEL_WRITE),
    ("DELETE", f"{_ACCOUNT}/labels/{{label_id}}"): _r(_O.LABEL_WRITE),
    ("POST", f"{_ACCOUNT}/messages/{{message_id}}/modify"): _r(_O.MESSAGE_MODIFY),
    ("POST", f"{_ACCOUNT}/messages/batch-modify"): _r(_O.MESSAGE_MODIFY),
    ("POST", f"{_ACCOUNT}/messages/{{message_id}}/trash"): _r(_O.MESSAGE_MODIFY),
    ("POST", f"{_ACCOUNT}/messages/{{message_id}}/untrash"): _r(_O.MESSAGE_MODIFY),
    ("GET", f"{_ACCOUNT}/threads"): _r(_O.METADATA_READ),
    ("POST", f"{_ACCOUNT}/threads/{{thread_id}}/modify"): _r(_O.MESSAGE_MODIFY),
    ("POST", f"{_ACCOUNT}/threads/{{thread_id}}/trash"): _r(_O.MESSAGE_MODIFY),
    ("POST", f"{_ACCOUNT}/threads/{{thread_id}}/untrash"): _r(_O.MESSAGE_MODIFY),
    ("GET", f"{_ACCOUNT}/settings/send-as"): _r(_O.SETTINGS_READ),
    ("GET", f"{_ACCOUNT}/settings/vacation"): _r(_O.SETTINGS_READ),
    ("PUT", f"{_ACCOUNT}/settings/vacation"): _r(_O.SETTINGS_WRITE),
    ("POST", f"{_ACCOUNT}/consents"): _r(_O.CONSENT_GRANT),
    ("GET", f"{_ACCOUNT}/consents"): _r(_O.HISTORY_READ),
    ("DELETE", "/v1/consents/{consent_id}"): _r(_O.CONSENT_REVOKE),
    ("GET", f"{_ACCOUNT}/access-history"): _r(_O.HISTORY_READ),
    ("GET", f"{_ACCOUNT}/export"): _r(_O.HISTORY_READ),
    ("GET", f"{_ACCOUNT}/changes"): _r(_O.TRANSFER),
    ("GET", f"{_ACCOUNT}/changes/stream"): _r(_O.TRANSFER),
    ("POST", "/v1/access-requests"): _r(_O.ACCESS_REQUEST_CREATE, _CASEWORK),
    ("GET", "/v1/access-requests"): _r(_O.ACCESS_REQUEST_READ, _CASEWORK),
    ("GET", "/v1/access-requests/{request_id}"): _r(_O.ACCESS_REQUEST_READ, _CASEWORK),
    ("POST", "/v1/access-requests/{request_id}/approve"): _r(_O.ACCESS_REQUEST_DECIDE, _CASEWORK),
    ("POST", "/v1/access-requests/{request_id}/dismiss"): _r(_O.ACCESS_REQUEST_DECIDE, _CASEWORK),
    ("GET", f"{_SUPPORT_ACCOUNT}/messages/{{message_id}}"): _r(_O.CONTENT_READ, _SUPPORT),
    ("GET", f"{_SUPPORT_ACCOUNT}/threads/{{thread_id}}"): _r(_O.CONTENT_READ, _SUPPORT),
    ("GET", f"{_SUPPORT_ACCOUNT}/messages/{{message_id}}/attachments/{{attachment_id}}"): _r(
        _O.ATTACHMENT_READ, _SUPPORT
    ),
    ("GET", "/v1/aggregates"): _r(_O.AGGREGATE_READ, frozenset({_P.AGGREGATE_OPS})),
    ("GET", "/v1/audit/events"): _r(_O.AUDIT_READ, _CASEWORK),
    ("POST", "/v1/audit/verify"): _r(_O.AUDIT_READ, _CASEWORK),
    ("GET", "/v1/audit/export"): _r(_O.AUDIT_READ, _CASEWORK),
    ("POST", "/v1/audit/evidence"): _r(_O.AUDIT_READ, _CASEWORK),
    ("GET", "/v1/webhooks/dead-letters"): _r(_O.DELIVERY_MANAGE),
    ("POST", "/v1/webhooks/dead-letters/{letter_id}/redeliver"): _r(_O.DELIVERY_MANAGE),
}


def route_operation(method: str, path: str) -> RouteOperation:
    """The table entry of an authenticated route; a route missing from it is a bug at startup."""
    try:
        return ROUTE_OPERATIONS[(method, path)]
    except KeyError:
        raise LookupError(f"{method} {path} names no operation in ROUTE_OPERATIONS") from None


def route_verdict(caller: Caller, route: RouteOperation) -> Verdict:
    return may_attempt(caller.actor.kind, route.operation, route.purposes)


def permitted_roles(route: RouteOperation) -> frozenset[Role]:
    """The roles the policy lets attempt this route (what the OpenAPI document should say)."""
    return frozenset(
        role for role in Role if route_verdict(Caller("probe", role), route).allowed
    )
