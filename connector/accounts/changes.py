"""Gmail history entries → change events: ids only (message, thread, label), never content.

Pure functions. One `history.list` entry becomes zero or more `Change`s, in Gmail's order
(added, deleted, labels added, labels removed within one entry, as Gmail lists each entry's
single kind of change). An entry that does not have the shape Gmail documents raises
`HistoryEntryError` with a reason code, so sync can count it and, if it keeps failing,
quarantine it instead of looping on it or dropping it silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connector.errors import HistoryEntryError
from connector.ports import GmailJson


class ChangeKind(StrEnum):
    MESSAGE_ADDED = "message_added"
    MESSAGE_DELETED = "message_deleted"
    LABELS_ADDED = "labels_added"
    LABELS_REMOVED = "labels_removed"
    RESYNC = "resync"  # the cursor was stale: re-read `message_ids` (a bounded re-scan)
    ENTRY_QUARANTINED = "entry_quarantined"  # history entry `history_id` kept failing
    # The account's lifecycle, in the same ordered feed (no ids but the account's).
    NEEDS_RELINK = "needs_relink"  # Google refused the refresh token (invalid_grant)
    UNLINKED = "unlinked"
    SCOPES_CHANGED = "scopes_changed"  # a relink granted a different set of features
    SENDING_PAUSED = "sending_paused"  # Gmail's sending limit was reached
    # No sign-in and no sync for the retention period: unlinked unless used before the notice ends
    DORMANT_NOTICE = "dormant_notice"


class EntryFault(StrEnum):
    """Why an entry could not be read (stored with the quarantined entry)."""

    NO_ID = "entry.no_id"
    BAD_MESSAGE = "entry.bad_message"
    BAD_LABELS = "entry.bad_labels"


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    history_id: str | None = None
    message_id: str | None = None
    thread_id: str | None = None
    label_ids: tuple[str, ...] = ()
    message_ids: tuple[str, ...] = ()  # for RESYNC only

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "historyId": self.history_id}
        if self.message_id is not None:
            out["messageId"] = self.message_id
            out["threadId"] = self.thread_id
        if self.kind in (ChangeKind.LABELS_ADDED, ChangeKind.LABELS_REMOVED):
            out["labelIds"] = list(self.label_ids)
        if self.kind is ChangeKind.RESYNC:
            out["messageIds"] = list(self.message_ids)
        return out


_KEYS: tuple[tuple[str, ChangeKind], ...] = (
    ("messagesAdded", ChangeKind.MESSAGE_ADDED),
    ("messagesDeleted", ChangeKind.MESSAGE_DELETED),
    ("labelsAdded", ChangeKind.LABELS_ADDED),
    ("labelsRemoved", ChangeKind.LABELS_REMOVED),
)
_LABELLED = frozenset({ChangeKind.LABELS_ADDED, ChangeKind.LABELS_REMOVED})


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return tuple(value)
    return None


def entry_changes(entry: GmailJson) -> list[Change]:
    """The changes one history entry announces; raises `HistoryEntryError` if malformed."""
    entry_id = entry.get("id")
    if not isinstance(entry_id, str) or not entry_id.isdigit():
        raise HistoryEntryError(str(entry_id)[:32], EntryFault.NO_ID)
    changes: list[Change] = []
    for key, kind in _KEYS:
        items = entry.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise HistoryEntryError(entry_id, EntryFault.BAD_MESSAGE)
        for item in items:
            message = item.get("message") if isinstance(item, dict) else None
            if not isinstance(message, dict) or not isinstance(message.get("id"), str):
                raise HistoryEntryError(entry_id, EntryFault.BAD_MESSAGE)
            thread = message.get("threadId")
            labels: tuple[str, ...] = ()
            if kind in _LABELLED:
                found = _strings(item.get("labelIds"))
                if found is None:
                    raise HistoryEntryError(entry_id, EntryFault.BAD_LABELS)
                labels = found
            thread_id = thread if isinstance(thread, str) else None
            changes.append(Change(kind, entry_id, message["id"], thread_id, labels))
    return changes


def resync(history_id: str, message_ids: Sequence[str]) -> Change:
    return Change(ChangeKind.RESYNC, history_id, message_ids=tuple(message_ids))


def quarantined(entry_id: str) -> Change:
    return Change(ChangeKind.ENTRY_QUARANTINED, entry_id)
