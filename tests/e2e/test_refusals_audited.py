"""Every refusal, at every layer, is in the audit trail: each route, each role, one event each."""

from __future__ import annotations

import itertools
import re
from typing import Any

from audit.vocab import Action, Decision, Severity
from connector.policy.recorder import is_refusal
from tests.e2e.conftest import ALICE, BOB, Stack, first_message

ROLES = ("alice", "op1", "rev", "adm")  # a user, an operator, a reviewer, an admin
_ids = itertools.count()


def _path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


async def _refusals(s: Stack, request_id: str) -> list[Any]:
    return [e for e in await s.events() if e.request_id == request_id and is_refusal(e)]


def _streams(op: dict[str, Any]) -> bool:
    """Whether the operation answers with server-sent events (an endless body)."""
    ok = op.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


async def _walk(s: Stack, values: dict[str, str]) -> list[tuple[str, str, str, int, int]]:
    """Call every authenticated operation of the served OpenAPI document as every role, with
    an empty body; return (role, method, path, status, refusal events) for each caller error."""
    status, spec, _ = await s.call("GET", "/openapi.json", None)
    assert status == 200
    seen = []
    operations = [
        (method.upper(), template, op)
        for template, item in spec["paths"].items()
        for method, op in item.items()
        if op.get("security")
    ]
    # Unlinking last: it removes the account the other calls name.
    operations.sort(key=lambda o: o[0] == "DELETE" and o[1] == "/v1/accounts/{account_id}")
    for (method, template, op), who in itertools.product(operations, ROLES):
        request_id = f"walk-{next(_ids):06d}-{who}"
        if _streams(op):  # an allowed stream never ends: read its status and hang up
            headers = {"Authorization": f"Bearer {s.token(who)}", "X-Request-ID": request_id}
            async with s.http.request(method, s.base + _path(template, values),
                                      headers=headers) as stream:  # fmt: skip
                status = stream.status
                assert stream.headers["X-Request-ID"] == request_id
        else:
            body = {} if method in {"POST", "PUT"} else None
            status, _, response = await s.call(
                method, _path(template, values), who, json=body,
                headers={"X-Request-ID": request_id},
            )  # fmt: skip
            assert response.headers["X-Request-ID"] == request_id
        if 400 <= status < 500 and status != 401:
            seen.append((who, method, template, status, len(await _refusals(s, request_id))))
    return seen


async def test_every_route_and_role_refusal_has_exactly_one_audit_event(stack: Stack) -> None:
    """Walking the OpenAPI document with every role: each 4xx a caller causes is recorded once."""
    message = await first_message(stack)
    values = {
        "account_id": ALICE, "message_id": message["id"], "thread_id": message["threadId"],
        "attachment_id": "att-none", "draft_id": "r-none", "consent_id": "c" * 32,
        "request_id": "a" * 32, "label_id": "Label_none", "letter_id": f"msg_{ALICE}_1",
    }  # fmt: skip
    seen = await _walk(stack, values)
    assert seen, "the walk met no refusal at all: it is not exercising the service"
    roles_refused = {who for who, *_ in seen}
    assert roles_refused == set(ROLES)  # everyone is refused somewhere
    wrong = [row for row in seen if row[-1] != 1]
    assert wrong == []


async def test_a_role_refused_by_the_route_is_recorded_with_role_and_route(stack: Stack) -> None:
    """A reviewer reading mail gets 403 role-not-permitted, and the trail says who, how, where."""
    status, body, response = await stack.call("GET", f"/v1/accounts/{ALICE}/messages", "rev")
    assert status == 403
    assert body["type"].endswith("/role-not-permitted")
    refusals = await _refusals(stack, response.headers["X-Request-ID"])
    assert len(refusals) == 1
    event = refusals[0]
    assert event.action is Action.API_REQUEST_REFUSED
    assert event.decision is Decision.DENY
    assert event.actor.id == "rev"
    assert event.account_id == ALICE
    assert "operation.not_permitted" in event.reasons
    assert "role:reviewer" in event.reasons
    assert "route:get_list_messages" in event.reasons


async def test_cross_account_consent_listing_is_recorded_high(stack: Stack) -> None:
    """Bob listing alice's consents is refused and recorded at high severity (cross-account).

    The cross-account unlink is proved over the real accounts store in tests/linking."""
    status, _, response = await stack.call("GET", f"/v1/accounts/{ALICE}/consents", "bob")
    assert status == 403
    refusals = await _refusals(stack, response.headers["X-Request-ID"])
    assert [(e.decision, e.severity, e.actor.id) for e in refusals] == [
        (Decision.DENY, Severity.HIGH, "bob")
    ]
    assert "actor.not_owner" in refusals[0].reasons
    status, _, _ = await stack.call("GET", f"/v1/accounts/{BOB}/consents", "bob")
    assert status == 200  # bob's own listing is allowed


async def test_an_allowed_consent_listing_is_recorded(stack: Stack) -> None:
    """Alice listing her own consents is an access to the trail of her mailbox: recorded."""
    status, _, response = await stack.call("GET", f"/v1/accounts/{ALICE}/consents", "alice")
    assert status == 200
    events = [e for e in await stack.events() if e.request_id == response.headers["X-Request-ID"]]
    assert [(e.action, e.decision) for e in events] == [(Action.CONSENT_LISTED, Decision.ALLOW)]


async def test_input_errors_are_recorded_once(stack: Stack) -> None:
    """A malformed consent body (422) is recorded once, naming the problem type."""
    status, body, response = await stack.call(
        "POST", f"/v1/accounts/{ALICE}/consents", "alice", json={"message_ids": 5}
    )
    assert 400 <= status < 500, body
    refusals = await _refusals(stack, response.headers["X-Request-ID"])
    assert len(refusals) == 1
    assert any(r.startswith("problem:") for r in refusals[0].reasons)
