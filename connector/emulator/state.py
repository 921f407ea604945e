"""Emulator state: users, mailboxes, labels, drafts and history. Pure data, no I/O.

Every mutation goes through `Mailbox` methods so that history records and historyIds stay
consistent, because clients doing partial sync rely on `history.list` telling the full story.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from connector.emulator.mime_parse import ParsedMessage, parse_message

MAX_ATTACHMENT_ALIASES = 100_000  # attachment ids handed out per mailbox, oldest forgotten first
MAX_ID = 2**63  # Gmail ids are unsigned hex below 2^63; larger values are "Invalid id value"
DEFAULT_HISTORY_RETENTION = 10_000


class HistoryType(StrEnum):
    """history.list's `historyTypes` filter values (singular, as the discovery document says)."""

    MESSAGE_ADDED = "messageAdded"
    MESSAGE_DELETED = "messageDeleted"
    LABEL_ADDED = "labelAdded"
    LABEL_REMOVED = "labelRemoved"

    @property
    def key(self) -> str:
        """The `History` resource's field for this type: plural (`messagesAdded`, ...)."""
        return _HISTORY_KEYS[self]


_HISTORY_KEYS = {
    HistoryType.MESSAGE_ADDED: "messagesAdded",
    HistoryType.MESSAGE_DELETED: "messagesDeleted",
    HistoryType.LABEL_ADDED: "labelsAdded",
    HistoryType.LABEL_REMOVED: "labelsRemoved",
}


class SystemLabel(StrEnum):
    INBOX = "INBOX"
    SENT = "SENT"
    DRAFT = "DRAFT"
    TRASH = "TRASH"
    SPAM = "SPAM"
    UNREAD = "UNREAD"
    STARRED = "STARRED"
    IMPORTANT = "IMPORTANT"
    CHAT = "CHAT"
    CATEGORY_PERSONAL = "CATEGORY_PERSONAL"
    CATEGORY_SOCIAL = "CATEGORY_SOCIAL"
    CATEGORY_PROMOTIONS = "CATEGORY_PROMOTIONS"
    CATEGORY_UPDATES = "CATEGORY_UPDATES"
    CATEGORY_FORUMS = "CATEGORY_FORUMS"


def parse_id(value: str) -> int | None:
    """Gmail id syntax: ≤16 lowercase/uppercase hex digits below 2^63; None when malformed."""
    if not value or len(value) > 16:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    if number >= MAX_ID or number < 0 or value.startswith(("+", "-")):
        return None
    return number


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Label:
    id: str
    name: str
    type: str  # "system" | "user"
    message_list_visibility: str | None = "show"
    label_list_visibility: str | None = "labelShow"

    def resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.message_list_visibility:
            out["messageListVisibility"] = self.message_list_visibility
        if self.label_list_visibility:
            out["labelListVisibility"] = self.label_list_visibility
        out["type"] = self.type
        return out


@dataclass(slots=True)
class Message:
    id: str
    number: int
    thread_id: str
    raw: bytes
    internal_date: int
    label_ids: list[str]
    history_id: int
    sort_key: tuple[int, int] = (0, 0)
    _parsed: ParsedMessage | None = None
    _mailbox_key: str = ""

    @property
    def parsed(self) -> ParsedMessage:
        # Parsed on first use: seeding thousands of messages must stay fast, and most
        # seeded messages are only ever listed, never opened or searched.
        if self._parsed is None:
            self._parsed = parse_message(self.raw, f"{self._mailbox_key}/{self.id}")
        return self._parsed

    def stub(self) -> dict[str, str]:
        return {"id": self.id, "threadId": self.thread_id}

    def minimal(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "threadId": self.thread_id}
        if self.label_ids:
            out["labelIds"] = list(self.label_ids)
        return out

    @property
    def subject(self) -> str:
        return self.parsed.header("Subject")

    @property
    def message_id_header(self) -> str:
        return self.parsed.header("Message-ID").strip()


@dataclass(slots=True)
class HistoryRecord:
    id: int
    type: HistoryType
    message: Message
    label_ids: list[str]

    def resource(self) -> dict[str, Any]:
        msg = self.message
        entry: dict[str, Any] = {"message": msg.minimal()}
        if self.type in (HistoryType.LABEL_ADDED, HistoryType.LABEL_REMOVED):
            entry["labelIds"] = list(self.label_ids)
        if self.type is HistoryType.MESSAGE_DELETED:
            entry["message"] = msg.stub()
        return {"id": str(self.id), "messages": [msg.stub()], self.type.key: [entry]}


class PushHook(Protocol):
    """Gmail push (`gmail_push.GmailPush`): told of every history record, checks watch topics."""

    def topic_known(self, topic: str) -> bool: ...

    def changed(self, box: Mailbox, record: HistoryRecord) -> None: ...


@dataclass(slots=True)
class Draft:
    id: str
    message: Message


class IdSource:
    """Gmail-like ids: the internalDate in ms in the high bits, a counter in the low 20 bits."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self, internal_date: int) -> tuple[str, int]:
        number = ((internal_date << 20) | (next(self._counter) & 0xFFFFF)) % MAX_ID
        return format(number, "x"), number


@dataclass
class Mailbox:
    email: str
    ids: IdSource
    history_id: int = 1000
    history_retention: int = DEFAULT_HISTORY_RETENTION
    messages: dict[str, Message] = field(default_factory=dict)
    order: list[Message] = field(default_factory=list)  # ascending by (internalDate, id)
    threads: dict[str, list[Message]] = field(default_factory=dict)
    by_rfc822_id: dict[str, Message] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    drafts: dict[str, Draft] = field(default_factory=dict)
    history: deque[HistoryRecord] = field(default_factory=deque)
    history_floor: int = 1000  # startHistoryId below this is outside the retained window
    search_cache: dict[tuple[str, tuple[str, ...], bool], tuple[int, list[Message]]] = field(
        default_factory=dict
    )
    # Gmail hands out a new attachment id at every get: alias -> (message id, part's own id).
    attachment_aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    # users.watch registration (topicName, labelIds, expiration) or None; users.settings.*
    watch: dict[str, Any] | None = None
    push: PushHook | None = None  # set by the emulator; None: watch publishes nothing
    send_as: list[dict[str, Any]] = field(default_factory=list)
    vacation: dict[str, Any] = field(default_factory=lambda: {"enableAutoReply": False})
    _label_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _draft_seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for sys_label in SystemLabel:
            # Gmail returns most system labels as bare {id, name, type}; CHAT is hidden.
            hidden = sys_label is SystemLabel.CHAT
            self.labels[sys_label.value] = Label(
                sys_label.value,
                sys_label.value,
                "system",
                "hide" if hidden else None,
                "labelHide" if hidden else None,
            )
        self.history_floor = self.history_id
        # Every mailbox has its own address as the primary, default send-as identity.
        self.send_as.append(
            {"sendAsEmail": self.email, "displayName": "", "replyToAddress": "",
             "signature": "", "isPrimary": True, "isDefault": True}
        )  # fmt: skip

    # -- history -------------------------------------------------------------------------
    def _bump(self) -> int:
        self.history_id += 1
        return self.history_id

    def _record(self, kind: HistoryType, msg: Message, label_ids: list[str]) -> None:
        hid = self._bump()
        msg.history_id = hid
        record = HistoryRecord(hid, kind, msg, label_ids)
        self.history.append(record)
        while len(self.history) > self.history_retention:
            dropped = self.history.popleft()
            self.history_floor = dropped.id
        if self.watch is not None and self.push is not None:
            self.push.changed(self, record)

    # -- labels --------------------------------------------------------------------------
    def create_label(self, name: str, **visibility: str | None) -> Label:
        label = Label(
            f"Label_{next(self._label_seq)}",
            name,
            "user",
            visibility.get("messageListVisibility") or "show",
            visibility.get("labelListVisibility") or "labelShow",
        )
        self.labels[label.id] = label
        return label

    def label_by_name(self, name: str) -> Label | None:
        lname = name.lower()
        for label in self.labels.values():
            if label.name.lower() == lname or label.id.lower() == lname:
                return label
        return None

    # -- messages ------------------------------------------------------------------------
    def add_message(
        self,
        raw: bytes,
        label_ids: list[str],
        *,
        thread_id: str | None = None,
        internal_date: int | None = None,
        record: bool = True,
        rfc822_id: str | None = None,
    ) -> Message:
        date = internal_date if internal_date is not None else now_ms()
        mid, number = self.ids.next(date)
        tid = thread_id if thread_id is not None and thread_id in self.threads else mid
        msg = Message(mid, number, tid, raw, date, list(label_ids), self.history_id)
        msg.sort_key = (date, number)
        msg._mailbox_key = self.email
        self.messages[mid] = msg
        bisect.insort(self.order, msg, key=lambda m: m.sort_key)
        self.threads.setdefault(tid, []).append(msg)
        rfc_id = (rfc822_id if rfc822_id is not None else msg.message_id_header).lower()
        if rfc_id:
            self.by_rfc822_id.setdefault(rfc_id, msg)
        if record:
            self._record(HistoryType.MESSAGE_ADDED, msg, [])
        else:
            msg.history_id = self._bump()
        return msg

    def delete_message(self, msg: Message) -> None:
        self.messages.pop(msg.id, None)
        index = bisect.bisect_left(self.order, msg.sort_key, key=lambda m: m.sort_key)
        if index < len(self.order) and self.order[index] is msg:
            del self.order[index]
        thread = self.threads.get(msg.thread_id, [])
        if msg in thread:
            thread.remove(msg)
        if not thread:
            self.threads.pop(msg.thread_id, None)
        rfc_id = msg.message_id_header.lower()
        if self.by_rfc822_id.get(rfc_id) is msg:
            del self.by_rfc822_id[rfc_id]
        self._record(HistoryType.MESSAGE_DELETED, msg, [])

    def modify(self, msg: Message, add: list[str], remove: list[str]) -> None:
        added = [label for label in add if label not in msg.label_ids]
        removed = [label for label in remove if label in msg.label_ids and label not in added]
        if added:
            msg.label_ids.extend(added)
            self._record(HistoryType.LABEL_ADDED, msg, added)
        if removed:
            msg.label_ids[:] = [label for label in msg.label_ids if label not in removed]
            self._record(HistoryType.LABEL_REMOVED, msg, removed)

    def attachment_alias(self, message_id: str, stable_id: str) -> str:
        """A fresh opaque id for one attachment part, valid for attachments.get of that message."""
        alias = "ANGjdJ" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii")
        aliases = self.attachment_aliases
        if len(aliases) >= MAX_ATTACHMENT_ALIASES:
            del aliases[next(iter(aliases))]
        aliases[alias] = (message_id, stable_id)
        return alias

    def newest_first(self) -> list[Message]:
        return self.order[::-1]

    def thread_history_id(self, thread_id: str) -> int:
        return max(m.history_id for m in self.threads[thread_id])

    def new_draft_id(self) -> str:
        # Gmail draft ids look like "r-<signed decimal>"; keep them distinct from message ids.
        return f"r{4_000_000_000_000_000_000 + next(self._draft_seq) * 7919}"


@dataclass
class EmulatorState:
    """All mailboxes; `users` keeps seeding order so the first user is stable."""

    ids: IdSource = field(default_factory=IdSource)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    push: PushHook | None = None

    def attach_push(self, push: PushHook) -> None:
        self.push = push
        for box in self.mailboxes.values():
            box.push = push

    def add_user(self, email: str, history_start: int = 1000) -> Mailbox:
        box = Mailbox(email.lower(), self.ids, history_id=history_start, push=self.push)
        self.mailboxes[box.email] = box
        return box

    @property
    def users(self) -> list[str]:
        return list(self.mailboxes)

    def mailbox(self, email: str) -> Mailbox | None:
        return self.mailboxes.get(email.lower())
