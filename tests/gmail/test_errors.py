"""Error classification: Gmail's recorded envelopes and the emulator's live answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.gmail import errors
from connector.mime import Composition, compose

FIXTURES = Path("/work/shared/fixtures/gmail/gmail_error_envelopes.json")
CASES = [c for c in json.loads(FIXTURES.read_text())["cases"] if "body" in c]

EXPECTED = {
    "messages.get unknown but well-formed id": (errors.NotFoundError, "notFound"),
    "labels.get unknown label id": (errors.NotFoundError, "notFound"),
    "history.list with expired": (errors.NotFoundError, "notFound"),
    "messages.get with unparsable id": (errors.InvalidRequestError, "invalidArgument"),
    "history.list missing/invalid": (errors.InvalidRequestError, "invalidArgument"),
    "400 badRequest": (errors.InvalidRequestError, "badRequest"),
    "401 present-but-invalid": (errors.AuthError, "authError"),
    "401 no Authorization": (errors.AuthError, "required"),
    "403 insufficient scope": (errors.PermissionDeniedError, "insufficientPermissions"),
    "403 userRateLimitExceeded": (errors.RateLimitedError, "userRateLimitExceeded"),
    "403 per-minute-per-user": (errors.RateLimitedError, "rateLimitExceeded"),
    "429 Resource exhausted": (errors.RateLimitedError, "rateLimitExceeded"),
    "429 per-user concurrent": (errors.RateLimitedError, "rateLimitExceeded"),
    "500 backendError": (errors.ServerError, "backendError"),
}


def _expected(name: str) -> tuple[type[errors.ApiError], str]:
    matches = [v for k, v in EXPECTED.items() if name.startswith(k)]
    assert len(matches) == 1, name
    return matches[0]


@pytest.mark.parametrize("case", CASES, ids=[c["name"][:40] for c in CASES])
def test_fixture_envelope_classification(case):
    """Every recorded envelope maps to its error class, keeping reason, status and message."""
    cls, reason = _expected(case["name"])
    error = errors.classify(case["http_status"], json.dumps(case["body"]).encode())
    assert type(error) is cls
    assert error.reason == reason
    assert error.status == case["http_status"]
    assert error.message == case["body"]["error"]["message"]
    assert isinstance(error, errors.GmailError)


def test_every_fixture_case_is_covered():
    """The expectation table covers each fixture case with a body exactly once."""
    assert len(CASES) == len(EXPECTED)


def test_retryability_by_class():
    """Rate limits, 5xx and network errors are retryable; permission and 4xx are not."""
    body = b'{"error": {"code": 403, "message": "m", "errors": [{"reason": "%s"}]}}'
    assert errors.is_retryable(errors.classify(403, body % b"userRateLimitExceeded"))
    assert not errors.is_retryable(errors.classify(403, body % b"insufficientPermissions"))
    assert errors.is_retryable(errors.classify(503, b""))
    assert not errors.is_retryable(errors.classify(400, b"not json"))
    assert errors.is_retryable(errors.NetworkError("reset", request_sent=True))


def test_garbled_body_and_retry_after():
    """A non-JSON body still classifies by status; Retry-After seconds are kept."""
    error = errors.classify(429, b"<html>busy</html>", "7")
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 7.0
    assert error.reason is None
    assert "429" in str(error)


async def test_live_not_found_and_invalid_id(client, user):
    """The emulator's 404 and 400 'Invalid id value' reach callers as typed errors."""
    with pytest.raises(errors.NotFoundError) as not_found:
        await client.get_message(user, "00000000deadbeef")
    assert not_found.value.reason == "notFound"
    with pytest.raises(errors.InvalidRequestError) as invalid:
        await client.get_message(user, "nosuchmessageid")
    assert invalid.value.message == "Invalid id value"


async def test_insufficient_permissions_fails_fast(emu, tokens, make_client):
    """A read-only token sending mail gets PermissionDeniedError after exactly one request."""
    account = tokens.link(emu.users[0], ("https://www.googleapis.com/auth/gmail.readonly",))
    client = make_client()
    message = compose(Composition(sender=account, to=[emu.users[1]], subject="s", text="t"))
    before = emu.stats.requests["messages.send"]
    sent_before = emu.count_messages(account, "SENT")
    with pytest.raises(errors.PermissionDeniedError) as denied:
        await client.send_message(account, message)
    assert denied.value.reason == "insufficientPermissions"
    assert emu.stats.requests["messages.send"] == before + 1
    assert emu.count_messages(account, "SENT") == sent_before
