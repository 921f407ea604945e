"""Mailbox sync: a full listing, then incremental catch-up from history.list.

The cursor logic is pure (`fold_history`, `apply_changes`); `MailboxSync` drives it through
the client. A sync either completes and returns a new snapshot or raises and changes nothing,
so a failure never advances the cursor past changes it did not apply. Every message a history
record mentions is fetched again rather than patched, so the snapshot converges on Gmail's
current state whatever the record types say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from connector.gmail.errors import ApiError, NotFoundError
from connector.logs import get_logger
from connector.ports import GmailJson

log = get_logger(__name__)
SYNC_HEADERS: tuple[str, ...] = ("From", "To", "Subject", "Date", "Message-ID")


class SyncKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """Synced state: metadata per message id, valid as of `history_id`."""

    history_id: str
    messages: Mapping[str, GmailJson] = field(default_factory=dict)

    def labels(self) -> dict[str, frozenset[str]]:
        return {mid: frozenset(m.get("labelIds", [])) for mid, m in self.messages.items()}


@dataclass(frozen=True, slots=True)
class HistoryChanges:
    """What a run of history records means: messages to refetch, messages gone."""

    touched: frozenset[str]
    deleted: frozenset[str]


@dataclass(frozen=True, slots=True)
class SyncResult:
    snapshot: MailboxSnapshot
    kind: SyncKind
    changed: int  # messages fetched or removed by this run


def _ids(entries: Any) -> list[str]:
    out: list[str] = []
    for entry in entries or []:
        message = entry.get("message", entry) if isinstance(entry, dict) else {}
        if isinstance(message, dict) and isinstance(message.get("id"), str):
            out.append(message["id"])
    return out


def fold_history(records: Iterable[GmailJson]) -> HistoryChanges:
    """Fold records, oldest first, into the set to refetch and the set deleted."""
    touched: set[str] = set()
    deleted: set[str] = set()
    for record in records:
        for mid in _ids(record.get("messagesDeleted")):
            deleted.add(mid)
            touched.discard(mid)
        # Additions, label changes and any id only listed under "messages" (a record type we
        # do not know) are all refetched: nothing a record mentions is skipped.
        mentioned = (
            _ids(record.get("messagesAdded"))
            + _ids(record.get("labelsAdded"))
            + _ids(record.get("labelsRemoved"))
            + _ids(record.get("messages"))
        )
        for mid in mentioned:
            if mid not in deleted:
                touched.add(mid)
    return HistoryChanges(frozenset(touched), frozenset(deleted))


def apply_changes(
    snapshot: MailboxSnapshot,
    changes: HistoryChanges,
    fetched: Mapping[str, GmailJson | None],
    history_id: str,
) -> MailboxSnapshot:
    """New snapshot: deletions applied, touched messages replaced (None = gone since)."""
    messages = dict(snapshot.messages)
    for mid in changes.deleted:
        messages.pop(mid, None)
    for mid in changes.touched:
        current = fetched.get(mid)
        if current is None:
            messages.pop(mid, None)
        else:
            messages[mid] = current
    return MailboxSnapshot(history_id, MappingProxyType(messages))


class SyncSource(Protocol):
    """What sync needs from the client (kept narrow so sync is testable on its own)."""

    async def get_profile(self, account_id: str) -> GmailJson: ...

    async def list_all_message_ids(self, account_id: str) -> list[str]: ...

    async def list_history_pages(self, account_id: str, start_history_id: str) -> list[GmailJson]:
        """All pages, in order; `NotFoundError` when the cursor is too old."""
        ...

    async def fetch_metadata(
        self, account_id: str, message_ids: Sequence[str], headers: tuple[str, ...]
    ) -> dict[str, GmailJson | None]:
        """Metadata per id; None for a message that no longer exists."""
        ...


class MailboxSync:
    def __init__(self, source: SyncSource, *, headers: tuple[str, ...] = SYNC_HEADERS) -> None:
        self._source = source
        self._headers = headers

    async def full(self, account_id: str) -> SyncResult:
        # The cursor is read before listing: anything that changes during the listing shows
        # up in the next incremental run instead of being lost.
        profile = await self._source.get_profile(account_id)
        history_id = str(profile["historyId"])
        ids = await self._source.list_all_message_ids(account_id)
        fetched = await self._source.fetch_metadata(account_id, ids, self._headers)
        messages = {mid: meta for mid, meta in fetched.items() if meta is not None}
        log.info("gmail_full_sync", messages=len(messages))
        snapshot = MailboxSnapshot(history_id, MappingProxyType(messages))
        return SyncResult(snapshot, SyncKind.FULL, len(messages))

    async def incremental(self, account_id: str, snapshot: MailboxSnapshot) -> SyncResult:
        """Catch up from `snapshot.history_id`; a full sync when the cursor has expired."""
        try:
            pages = await self._source.list_history_pages(account_id, snapshot.history_id)
        except NotFoundError:
            log.info("gmail_history_expired_full_sync")
            return await self.full(account_id)
        records = [record for page in pages for record in page.get("history", [])]
        changes = fold_history(records)
        history_id = str(pages[-1].get("historyId", snapshot.history_id))
        fetched = await self._source.fetch_metadata(
            account_id, sorted(changes.touched), self._headers
        )
        new = apply_changes(snapshot, changes, fetched, history_id)
        changed = len(changes.touched) + len(changes.deleted)
        log.info("gmail_incremental_sync", records=len(records), changed=changed)
        return SyncResult(new, SyncKind.INCREMENTAL, changed)


def gone_or_raise(result: Any) -> GmailJson | None:
    """A batch part for sync: the metadata, None when the message is gone, else raise."""
    if isinstance(result, NotFoundError):
        return None
    if isinstance(result, ApiError):
        raise result
    return dict(result)
