"""Bad inputs and bad callers: problem+json answers, nothing changed, attempts audited."""

from __future__ import annotations

import time

import jwt
import pytest

from audit.vocab import Action, Decision, Severity
from tests.e2e.conftest import (
    ALICE,
    BOB,
    JWT_SECRET,
    MAX_BODY,
    Stack,
    assert_problem,
    first_message,
)

SEND = f"/v1/accounts/{ALICE}/messages/send"


@pytest.mark.parametrize(
    ("kwargs", "status", "slug"),
    [
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed-request",
        ),
        ({"json": {"to": "not-a-list", "subject": 5}}, 422, "validation-failed"),
        ({"json": {"to": ["a@example.org"], "surprise": 1}}, 422, "validation-failed"),
        ({"json": ["a", "list"]}, 422, "validation-failed"),
        (
            {"json": {"to": ["a@example.org"], "subject": "hi\r\nBcc: evil@example.org"}},
            400,
            "header-injection",
        ),
        ({"json": {"to": ["a@example.org\nBcc: x@example.org"]}}, 400, "header-injection"),
        ({"json": {"to": ["a@example.org"], "reply_to": "ZZZ"}}, 400, "invalid-id"),
        (
            {"data": b"to=a", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "unsupported-media-type",
        ),
        (
            {"json": {"to": ["a@example.org"], "text": "x" * (MAX_BODY + 10)}},
            413,
            "payload-too-large",
        ),
    ],  # fmt: skip
)
async def test_bad_send_bodies_change_nothing(
    stack: Stack, kwargs: dict[str, object], status: int, slug: str
) -> None:
    """Each malformed send is refused with its problem type and no message leaves."""
    before = stack.emu.count_messages(stack.alice_email)
    got, body, resp = await stack.call("POST", SEND, **kwargs)  # type: ignore[arg-type]
    assert_problem(got, body, resp, status, slug)
    assert stack.emu.count_messages(stack.alice_email) == before


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/accounts/{ALICE}/messages/NOTHEX",
        f"/v1/accounts/{ALICE}/messages/12345678901234567890",
        f"/v1/accounts/{ALICE}/threads/xyz",
        f"/v1/accounts/{ALICE}/drafts/abc",
        "/v1/accounts/bad@account/messages",
        f"/v1/accounts/{ALICE}/messages/abc/attachments/bad!id",
    ],
)
async def test_invalid_ids_are_400(stack: Stack, path: str) -> None:
    """Identifiers of the wrong form are refused before the gate (400 invalid-id)."""
    status, body, resp = await stack.call("GET", path)
    assert_problem(status, body, resp, 400, "invalid-id")


async def test_bad_query_parameters_are_422(stack: Stack) -> None:
    """Out-of-range page sizes and unknown formats are validation failures."""
    for params in ({"max_results": "0"}, {"max_results": "x"}, {"format": "weird"}):
        status, body, resp = await stack.call(
            "GET", f"/v1/accounts/{ALICE}/messages", params=params
        )
        assert_problem(status, body, resp, 422, "validation-failed")


async def test_authentication_failures_are_401(stack: Stack) -> None:
    """Missing, malformed, wrongly signed, expired and role-less tokens are all 401."""
    path = f"/v1/accounts/{ALICE}/messages"
    now = int(time.time())
    base = {"sub": "alice", "role": "user", "iss": stack.settings.jwt_issuer,
            "aud": stack.settings.jwt_audience, "iat": now, "exp": now + 60}  # fmt: skip
    tokens = [
        None,
        "garbage",
        jwt.encode(base, "another-secret-0123456789abcdef0123456789", algorithm="HS256"),
        jwt.encode({**base, "exp": now - 3600, "iat": now - 7200}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({**base, "role": "superuser"}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({**base, "aud": "someone-else"}, JWT_SECRET, algorithm="HS256"),
        jwt.encode({**base, "iss": "https://evil.example"}, JWT_SECRET, algorithm="HS256"),
    ]
    for token in tokens:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        status, body, resp = await stack.call("GET", path, None, headers=headers)
        assert_problem(status, body, resp, 401, "unauthenticated")
        assert "WWW-Authenticate" in resp.headers


async def test_wrong_role_is_403(stack: Stack) -> None:
    """Operators, reviewers and admins cannot use the owner's inbox routes."""
    for who in ("op1", "rev", "adm"):
        status, body, resp = await stack.call("GET", f"/v1/accounts/{ALICE}/messages", who)
        assert_problem(status, body, resp, 403, "role-not-permitted")


async def test_reviewer_cannot_read_mail(stack: Stack) -> None:
    """A reviewer has no route to mail: owner and support routes both refuse."""
    message = await first_message(stack)
    for path in (
        f"/v1/accounts/{ALICE}/messages/{message['id']}",
        f"/v1/support/accounts/{ALICE}/messages/{message['id']}",
    ):
        status, body, resp = await stack.call("GET", path, "rev")
        assert_problem(status, body, resp, 403, "role-not-permitted")


async def test_user_cannot_read_another_users_mailbox(stack: Stack) -> None:
    """Bob on alice's account is refused with actor.not_owner and a high-severity audit event."""
    message = await first_message(stack)
    status, body, resp = await stack.call(
        "GET", f"/v1/accounts/{ALICE}/messages/{message['id']}", "bob"
    )
    assert_problem(status, body, resp, 403, "access-denied")
    assert "actor.not_owner" in body["reasons"]
    denials = [e for e in await stack.events(actor_id="bob", decision=Decision.DENY)
               if e.account_id == ALICE]  # fmt: skip
    assert denials
    assert denials[0].severity is Severity.HIGH
    assert denials[0].action is Action.GMAIL_MESSAGE_READ
    status, body, _ = await stack.call("GET", f"/v1/accounts/{BOB}/messages", "bob")
    assert status == 200


async def test_unknown_route_and_method(stack: Stack) -> None:
    """Unknown paths are 404 and wrong methods 405, both as problems."""
    status, body, resp = await stack.call("GET", "/v1/nope")
    assert_problem(status, body, resp, 404, "not-found")
    status, body, resp = await stack.call("PATCH", "/healthz")
    assert_problem(status, body, resp, 405, "method-not-allowed")
