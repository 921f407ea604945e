"""Async Gmail client: fast, quota-aware, exactly-once send. Only the access gate imports it."""

from connector.gmail.client import GmailClient
from connector.gmail.errors import (
    ApiError,
    AuthError,
    CompositionError,
    GmailError,
    InvalidRequestError,
    MessageTooLargeError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SendOutcomeUnknownError,
    ServerError,
)
from connector.gmail.quota import QuotaPolicy, QuotaRegime
from connector.gmail.retry import RetryPolicy
from connector.gmail.sync import MailboxSnapshot, SyncKind, SyncResult
from connector.mime import (
    Attachment,
    Composition,
    ThreadContext,
    compose,
    compose_forward,
    compose_reply,
)

__all__ = [
    "ApiError",
    "Attachment",
    "AuthError",
    "Composition",
    "CompositionError",
    "GmailClient",
    "GmailError",
    "InvalidRequestError",
    "MailboxSnapshot",
    "MessageTooLargeError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaPolicy",
    "QuotaRegime",
    "RateLimitedError",
    "RetryPolicy",
    "SendOutcomeUnknownError",
    "ServerError",
    "SyncKind",
    "SyncResult",
    "ThreadContext",
    "compose",
    "compose_forward",
    "compose_reply",
]
