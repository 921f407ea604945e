"""Public surface and log hygiene of connector.gmail."""

from __future__ import annotations

import inspect

import structlog

import connector.gmail as gmail
from connector.emulator.faults import FaultConfig
from connector.mime import Composition, compose
from connector.ports import MailboxPort


def test_exported_names_are_pinned():
    """The package re-exports exactly these names."""
    assert sorted(gmail.__all__) == sorted(
        [
            "ApiError", "Attachment", "AuthError", "CompositionError", "Composition",
            "GmailClient", "GmailError", "InvalidRequestError", "MailboxSnapshot",
            "MessageTooLargeError", "NetworkError", "NotFoundError", "PermissionDeniedError",
            "QuotaPolicy", "QuotaRegime", "RateLimitedError", "RetryPolicy",
            "SendOutcomeUnknownError", "ServerError", "SyncKind", "SyncResult", "ThreadContext",
            "compose", "compose_forward", "compose_reply",
        ]
    )  # fmt: skip
    assert all(hasattr(gmail, name) for name in gmail.__all__)


def test_client_has_every_port_method_with_same_parameters():
    """GmailClient implements each MailboxPort method with the same parameter names."""
    for name, member in inspect.getmembers(MailboxPort, inspect.isfunction):
        if name.startswith("_"):
            continue
        ours = getattr(gmail.GmailClient, name)
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(member).parameters
        ), name


def test_error_tree():
    """Every API error class derives from ApiError and GmailError."""
    for cls in (
        gmail.AuthError,
        gmail.PermissionDeniedError,
        gmail.NotFoundError,
        gmail.InvalidRequestError,
        gmail.RateLimitedError,
        gmail.ServerError,
    ):
        assert issubclass(cls, gmail.ApiError)
        assert issubclass(cls, gmail.GmailError)
    assert issubclass(gmail.MessageTooLargeError, gmail.CompositionError)
    assert not issubclass(gmail.SendOutcomeUnknownError, gmail.ApiError)


async def test_logs_hold_no_tokens_or_content(emu, user, client, tokens):
    """Retry and send-resolution logs never carry the token, subject, body or addresses."""
    emu.set_faults(FaultConfig(seed=41, error_rate=0.5, after_commit_rate=1.0))
    message = compose(
        Composition(sender=user, to=[emu.users[1]], subject="canary-subject", text="canary-body")
    )
    with structlog.testing.capture_logs() as logs:
        await client.send_message(user, message)
        await client.get_profile(user)
    assert logs
    text = repr(logs)
    token = (await tokens.access_token(user)).token
    for secret in (token, "canary-subject", "canary-body", user, emu.users[1]):
        assert secret not in text
