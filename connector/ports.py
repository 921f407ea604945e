"""Ports shared across layers. Real and fake adapters implement these; fakes are real code.

`MailboxPort` is what the access gate calls; the real adapter is `connector.gmail` (imported only
by the gate's wiring), the fake is an in-memory mailbox used to test the gate without HTTP.
Values are Gmail's own JSON shapes (dicts), so the emulator, Google and the fakes agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypedDict, Unpack

GmailJson = dict[str, Any]

# Told of every HTTP exchange with Gmail: (verb, URL path, status, seconds). Metrics use it; it
# must be cheap and must not raise.
ExchangeObserver = Callable[[str, str, int, float], None]

LIST_PAGE_SIZE = 100  # Gmail's own default page size for a messages or threads listing


class ListOptions(TypedDict, total=False):
    """What a messages or threads listing returns; an absent option is Gmail's default (no
    search, any labels, the first page, `LIST_PAGE_SIZE` items)."""

    query: str | None  # a Gmail search
    label_ids: tuple[str, ...]  # labels every listed item carries
    page_token: str | None
    max_results: int


class Format(StrEnum):
    """Gmail's `format` for a message, thread or draft get."""

    FULL = "full"
    METADATA = "metadata"
    MINIMAL = "minimal"  # ids, labels, dates and size: no snippet, headers or body
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class Fetch:
    """What a message get returns: the format and, for `METADATA`, the headers kept (none named:
    all of them). Hashable, so the client keys its request templates by it."""

    format: Format = Format.FULL
    headers: tuple[str, ...] = ()


FETCH_FULL = Fetch(Format.FULL)
FETCH_METADATA = Fetch(Format.METADATA)
FETCH_MINIMAL = Fetch(Format.MINIMAL)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expiry: datetime | None  # UTC; None when unknown
    scopes: frozenset[str]

    def __repr__(self) -> str:  # the token is a secret: never in logs or tracebacks
        scopes = sorted(self.scopes)
        return f"AccessToken(token=[redacted], expiry={self.expiry!r}, scopes={scopes})"


class TokenSource(Protocol):
    """Hands out a valid access token for an account.

    Implementations refresh before expiry and, when `force_refresh` is set (after a 401), once for
    all concurrent callers. A dead refresh token raises `connector.errors.NeedsRelinkError`.
    """

    async def access_token(
        self, account_id: str, *, force_refresh: bool = False
    ) -> AccessToken: ...


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A composed RFC 822 message ready to upload, with what exactly-once send needs."""

    raw: bytes  # the full RFC 822 bytes
    message_id: str  # the Message-ID header value, unique per composition, e.g. "<...@connector>"
    thread_id: str | None = None


class MailboxPort(Protocol):
    """Gmail operations the gate may perform for one linked account (`account_id`)."""

    async def get_profile(self, account_id: str) -> GmailJson: ...

    async def list_labels(self, account_id: str) -> GmailJson: ...

    async def watch(
        self, account_id: str, topic: str, label_ids: tuple[str, ...] = ()
    ) -> GmailJson:
        """users.watch: push notices to `topic`; `{"historyId", "expiration"}` (ms epoch)."""
        ...

    async def stop_watch(self, account_id: str) -> None: ...

    async def list_history_pages(self, account_id: str, start_history_id: str) -> list[GmailJson]:
        """history.list from the cursor, every page in order; NotFoundError when it is stale."""
        ...

    async def list_messages(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson: ...

    async def get_message(
        self, account_id: str, message_id: str, fetch: Fetch = FETCH_FULL
    ) -> GmailJson: ...

    async def get_messages(
        self, account_id: str, message_ids: list[str], fetch: Fetch = FETCH_METADATA
    ) -> list[GmailJson]:
        """Batched get; results in the order of `message_ids`; a failed part raises."""
        ...

    async def get_thread(
        self, account_id: str, thread_id: str, *, fmt: Format = Format.FULL
    ) -> GmailJson: ...

    def stream_attachment(
        self, account_id: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        """Decoded attachment bytes in chunks."""
        ...

    async def list_drafts(
        self, account_id: str, *, page_token: str | None = None, max_results: int = 100
    ) -> GmailJson: ...

    async def get_draft(self, account_id: str, draft_id: str) -> GmailJson: ...

    async def create_draft(self, account_id: str, message: OutgoingMessage) -> GmailJson: ...

    async def update_draft(
        self, account_id: str, draft_id: str, message: OutgoingMessage
    ) -> GmailJson: ...

    async def delete_draft(self, account_id: str, draft_id: str) -> None: ...

    async def send_draft(self, account_id: str, draft_id: str) -> GmailJson: ...

    async def send_message(self, account_id: str, message: OutgoingMessage) -> GmailJson:
        """Send exactly once: an unknown outcome is resolved by an `rfc822msgid:` search."""
        ...

    # -- organizing (gmail.modify; never a permanent delete) ------------------------------
    async def create_label(self, account_id: str, label: Mapping[str, Any]) -> GmailJson: ...

    async def update_label(
        self, account_id: str, label_id: str, changes: Mapping[str, Any]
    ) -> GmailJson: ...

    async def delete_label(self, account_id: str, label_id: str) -> None: ...

    async def modify_message(
        self, account_id: str, message_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson: ...

    async def batch_modify(
        self, account_id: str, message_ids: Sequence[str], add: Sequence[str],
        remove: Sequence[str],
    ) -> None: ...  # fmt: skip

    async def trash_message(
        self, account_id: str, message_id: str, *, undo: bool = False
    ) -> GmailJson: ...

    async def list_threads(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson: ...

    async def modify_thread(
        self, account_id: str, thread_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson: ...

    async def trash_thread(
        self, account_id: str, thread_id: str, *, undo: bool = False
    ) -> GmailJson: ...

    # -- settings (gmail.settings.basic) -------------------------------------------------
    async def list_send_as(self, account_id: str) -> GmailJson: ...

    async def get_vacation(self, account_id: str) -> GmailJson: ...

    async def update_vacation(self, account_id: str, settings: Mapping[str, Any]) -> GmailJson: ...


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    """Decrypted OAuth credentials for one account, as the credential store hands them out."""

    refresh_token: str
    access_token: str | None
    expiry: datetime | None  # UTC
    scopes: frozenset[str]

    def __repr__(self) -> str:  # tokens are secrets: never in logs or tracebacks
        return (
            f"StoredCredentials(refresh_token=[redacted], access_token="
            f"{'[redacted]' if self.access_token else None}, expiry={self.expiry!r}, "
            f"scopes={sorted(self.scopes)})"
        )


class CredentialStore(Protocol):
    """Where a token source loads and saves credentials (the encrypted vault in production)."""

    async def load(self, account_id: str) -> StoredCredentials:
        """Raise `AccountNotLinkedError` if unknown, `NeedsRelinkError` if marked for relinking."""
        ...

    async def save_access_token(
        self, account_id: str, access_token: str, expiry: datetime | None, scopes: frozenset[str]
    ) -> None: ...

    async def mark_needs_relink(self, account_id: str, reason: str) -> None:
        """Record that the refresh token is dead; later loads raise `NeedsRelinkError`."""
        ...
