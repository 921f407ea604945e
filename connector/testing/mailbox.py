"""An in-memory `MailboxPort`: real code, Gmail's JSON shapes, for gate tests and benchmarks.

It keeps messages per account, groups them into threads by `threadId`, honours the formats the
gate asks for (`minimal` carries ids, labels and dates but no snippet), and records every call
in `calls` so a test can prove Gmail was never touched.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Unpack

from connector.ports import (
    FETCH_FULL,
    FETCH_METADATA,
    FETCH_MINIMAL,
    LIST_PAGE_SIZE,
    Fetch,
    Format,
    GmailJson,
    ListOptions,
    OutgoingMessage,
)


class FakeMailboxError(Exception):
    """Shaped like the Gmail client's errors: an HTTP status and Gmail's reason code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


# Far in the future: a fake watch never lapses unless a test says so.
WATCH_EXPIRY_MS = 4_102_444_800_000  # 2100-01-01


def _not_found() -> FakeMailboxError:
    return FakeMailboxError(404, "notFound")


class FakeMailbox:
    def __init__(self, *, chunk_size: int = 4) -> None:
        self.messages: dict[str, dict[str, GmailJson]] = {}
        self.attachments: dict[tuple[str, str, str], bytes] = {}
        self.drafts: dict[str, dict[str, GmailJson]] = {}
        self.user_labels: dict[str, dict[str, GmailJson]] = {}
        self.vacation: dict[str, GmailJson] = {}
        self.watches: dict[str, str] = {}  # account -> the watched topic
        self.calls: list[tuple[str, str]] = []  # (method, account_id)
        self.fail_next: Exception | None = None
        self.last_query: str | None = None
        self._ids = itertools.count(0x1000)
        self._chunk = chunk_size

    # -- seeding ----------------------------------------------------------------------------

    def add_message(
        self,
        account_id: str,
        message_id: str,
        *,
        thread_id: str | None = None,
        internal_date_ms: int = 1_700_000_000_000,
        subject: str = "hello",
        body: str = "body",
        labels: tuple[str, ...] = ("INBOX",),
    ) -> GmailJson:
        message: GmailJson = {
            "id": message_id,
            "threadId": thread_id or message_id,
            "labelIds": list(labels),
            "snippet": body[:100],
            "internalDate": str(internal_date_ms),
            "sizeEstimate": len(body) + len(subject),
            "payload": {
                "mimeType": "text/plain",
                "headers": [{"name": "Subject", "value": subject}],
                "body": {
                    "size": len(body),
                    "data": base64.urlsafe_b64encode(body.encode()).decode(),
                },
            },
        }
        self.messages.setdefault(account_id, {})[message_id] = message
        return message

    def add_attachment(
        self, account_id: str, message_id: str, attachment_id: str, data: bytes
    ) -> None:
        self.attachments[(account_id, message_id, attachment_id)] = data

    # -- helpers ----------------------------------------------------------------------------

    def _enter(self, method: str, account_id: str) -> None:
        self.calls.append((method, account_id))
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    def _message(self, account_id: str, message_id: str) -> GmailJson:
        try:
            return self.messages[account_id][message_id]
        except KeyError:
            raise _not_found() from None

    @staticmethod
    def _render(message: GmailJson, fetch: Fetch) -> GmailJson:
        base = {k: message[k] for k in ("id", "threadId", "labelIds", "internalDate")}
        if fetch.format == Format.MINIMAL:
            return {**base, "sizeEstimate": message["sizeEstimate"]}
        if fetch.format == Format.METADATA:
            wanted = {h.lower() for h in fetch.headers}
            kept = [
                h
                for h in message["payload"]["headers"]
                if not wanted or h["name"].lower() in wanted
            ]
            return {**base, "snippet": message["snippet"], "payload": {"headers": kept}}
        if fetch.format == Format.RAW:
            raw = base64.urlsafe_b64encode(message["payload"]["body"]["data"].encode()).decode()
            return {**base, "snippet": message["snippet"], "raw": raw}
        return dict(message)

    def _new_id(self) -> str:
        return f"{next(self._ids):x}"

    # -- MailboxPort ------------------------------------------------------------------------

    async def get_profile(self, account_id: str) -> GmailJson:
        self._enter("get_profile", account_id)
        total = len(self.messages.get(account_id, {}))
        threads = {m["threadId"] for m in self.messages.get(account_id, {}).values()}
        return {"messagesTotal": total, "threadsTotal": len(threads), "historyId": "1"}

    async def list_history_pages(self, account_id: str, start_history_id: str) -> list[GmailJson]:
        """No history is kept here: every cursor is current (the profile's historyId is 1)."""
        self._enter("list_history_pages", account_id)
        return [{"historyId": "1"}]

    async def watch(
        self, account_id: str, topic: str, label_ids: tuple[str, ...] = ()
    ) -> GmailJson:
        """A watch that lasts Gmail's 7 days; the topic is kept, nothing is published."""
        self._enter("watch", account_id)
        self.watches[account_id] = topic
        return {"historyId": "1", "expiration": str(WATCH_EXPIRY_MS)}

    async def stop_watch(self, account_id: str) -> None:
        self._enter("stop_watch", account_id)
        self.watches.pop(account_id, None)

    async def list_labels(self, account_id: str) -> GmailJson:
        self._enter("list_labels", account_id)
        labels = sorted(
            {label for m in self.messages.get(account_id, {}).values() for label in m["labelIds"]}
        )
        own = self.user_labels.get(account_id, {})
        system = [{"id": label, "name": label, "type": "system"} for label in labels
                  if label not in own]  # fmt: skip
        return {"labels": system + [dict(label) for label in own.values()]}

    async def list_messages(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson:
        found = self._listed("list_messages", account_id, options)
        stubs = [{"id": m["id"], "threadId": m["threadId"]} for m in found]
        return _page("messages", stubs, options)

    async def get_message(
        self, account_id: str, message_id: str, fetch: Fetch = FETCH_FULL
    ) -> GmailJson:
        self._enter("get_message", account_id)
        return self._render(self._message(account_id, message_id), fetch)

    async def get_messages(
        self, account_id: str, message_ids: list[str], fetch: Fetch = FETCH_METADATA
    ) -> list[GmailJson]:
        self._enter("get_messages", account_id)
        return [self._render(self._message(account_id, i), fetch) for i in message_ids]

    async def get_thread(
        self, account_id: str, thread_id: str, *, fmt: Format = Format.FULL
    ) -> GmailJson:
        self._enter("get_thread", account_id)
        members = [
            m for m in self.messages.get(account_id, {}).values() if m["threadId"] == thread_id
        ]
        if not members:
            raise _not_found()
        members.sort(key=lambda m: int(m["internalDate"]))
        return {"id": thread_id, "messages": [self._render(m, Fetch(fmt)) for m in members]}

    def stream_attachment(
        self, account_id: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        return self._stream(account_id, message_id, attachment_id)

    async def _stream(
        self, account_id: str, message_id: str, attachment_id: str
    ) -> AsyncIterator[bytes]:
        self._enter("stream_attachment", account_id)
        data = self.attachments.get((account_id, message_id, attachment_id))
        if data is None:
            raise _not_found()
        for start in range(0, len(data), self._chunk):
            yield data[start : start + self._chunk]

    async def list_drafts(
        self, account_id: str, *, page_token: str | None = None, max_results: int = 100
    ) -> GmailJson:
        self._enter("list_drafts", account_id)
        drafts = list(self.drafts.get(account_id, {}).values())[:max_results]
        return {"drafts": [{"id": d["id"], "message": d["message"]} for d in drafts]}

    async def get_draft(self, account_id: str, draft_id: str) -> GmailJson:
        self._enter("get_draft", account_id)
        try:
            return self.drafts[account_id][draft_id]
        except KeyError:
            raise _not_found() from None

    def _draft(self, draft_id: str, message: OutgoingMessage) -> GmailJson:
        message_id = self._new_id()
        stored: dict[str, Any] = {
            "id": message_id,
            "threadId": message.thread_id or message_id,
            "labelIds": ["DRAFT"],
        }
        return {"id": draft_id, "message": stored, "raw": message.raw}

    async def create_draft(self, account_id: str, message: OutgoingMessage) -> GmailJson:
        self._enter("create_draft", account_id)
        draft = self._draft(self._new_id(), message)
        self.drafts.setdefault(account_id, {})[draft["id"]] = draft
        return {"id": draft["id"], "message": draft["message"]}

    async def update_draft(
        self, account_id: str, draft_id: str, message: OutgoingMessage
    ) -> GmailJson:
        self._enter("update_draft", account_id)
        if draft_id not in self.drafts.get(account_id, {}):
            raise _not_found()
        draft = self._draft(draft_id, message)
        self.drafts[account_id][draft_id] = draft
        return {"id": draft_id, "message": draft["message"]}

    async def delete_draft(self, account_id: str, draft_id: str) -> None:
        self._enter("delete_draft", account_id)
        if self.drafts.get(account_id, {}).pop(draft_id, None) is None:
            raise _not_found()

    async def send_draft(self, account_id: str, draft_id: str) -> GmailJson:
        self._enter("send_draft", account_id)
        draft = self.drafts.get(account_id, {}).pop(draft_id, None)
        if draft is None:
            raise _not_found()
        sent = {**draft["message"], "labelIds": ["SENT"]}
        return self._store_sent(account_id, sent)

    async def send_message(self, account_id: str, message: OutgoingMessage) -> GmailJson:
        self._enter("send_message", account_id)
        message_id = self._new_id()
        sent = {"id": message_id, "threadId": message.thread_id or message_id, "labelIds": ["SENT"]}
        return self._store_sent(account_id, sent)

    def _store_sent(self, account_id: str, sent: GmailJson) -> GmailJson:
        stored = self.add_message(
            account_id, sent["id"], thread_id=sent["threadId"], labels=("SENT",)
        )
        return {k: stored[k] for k in ("id", "threadId", "labelIds")}

    # -- organizing -------------------------------------------------------------------------

    async def create_label(self, account_id: str, label: Mapping[str, Any]) -> GmailJson:
        self._enter("create_label", account_id)
        own = self.user_labels.setdefault(account_id, {})
        if any(existing["name"] == label.get("name") for existing in own.values()):
            raise FakeMailboxError(409, "duplicate")
        created = {**label, "id": f"Label_{len(own) + 1}", "type": "user"}
        own[created["id"]] = created
        return dict(created)

    def _own_label(self, account_id: str, label_id: str) -> GmailJson:
        label = self.user_labels.get(account_id, {}).get(label_id)
        if label is None:
            raise _not_found()
        return label

    async def update_label(
        self, account_id: str, label_id: str, changes: Mapping[str, Any]
    ) -> GmailJson:
        self._enter("update_label", account_id)
        label = self._own_label(account_id, label_id)
        label.update({k: v for k, v in changes.items() if k not in ("id", "type")})
        return dict(label)

    async def delete_label(self, account_id: str, label_id: str) -> None:
        self._enter("delete_label", account_id)
        self._own_label(account_id, label_id)
        del self.user_labels[account_id][label_id]
        for message in self.messages.get(account_id, {}).values():
            if label_id in message["labelIds"]:
                message["labelIds"].remove(label_id)

    @staticmethod
    def _relabel(message: GmailJson, add: Sequence[str], remove: Sequence[str]) -> None:
        labels = [label for label in message["labelIds"] if label not in remove]
        message["labelIds"] = labels + [label for label in add if label not in labels]

    async def modify_message(
        self, account_id: str, message_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson:
        self._enter("modify_message", account_id)
        message = self._message(account_id, message_id)
        self._relabel(message, add, remove)
        return self._render(message, FETCH_MINIMAL)

    async def batch_modify(
        self, account_id: str, message_ids: Sequence[str], add: Sequence[str],
        remove: Sequence[str],
    ) -> None:  # fmt: skip
        self._enter("batch_modify", account_id)
        for message_id in message_ids:  # Gmail skips unknown ids in a batchModify
            message = self.messages.get(account_id, {}).get(message_id)
            if message is not None:
                self._relabel(message, add, remove)

    async def trash_message(
        self, account_id: str, message_id: str, *, undo: bool = False
    ) -> GmailJson:
        self._enter("untrash_message" if undo else "trash_message", account_id)
        message = self._message(account_id, message_id)
        self._relabel(message, [] if undo else ["TRASH"], ["TRASH"] if undo else [])
        return self._render(message, FETCH_MINIMAL)

    def _thread(self, account_id: str, thread_id: str) -> list[GmailJson]:
        members = [m for m in self.messages.get(account_id, {}).values()
                   if m["threadId"] == thread_id]  # fmt: skip
        if not members:
            raise _not_found()
        return sorted(members, key=lambda m: int(m["internalDate"]))

    async def list_threads(self, account_id: str, **options: Unpack[ListOptions]) -> GmailJson:
        found = self._listed("list_threads", account_id, options)
        threads = dict.fromkeys(m["threadId"] for m in found)
        stubs = [{"id": t, "snippet": "", "historyId": "1"} for t in threads]
        return _page("threads", stubs, options)

    def _listed(self, method: str, account_id: str, options: ListOptions) -> list[GmailJson]:
        """The account's messages carrying every one of the listing's labels, newest first."""
        self._enter(method, account_id)
        self.last_query = options.get("query")
        label_ids = options.get("label_ids", ())
        found = [m for m in self.messages.get(account_id, {}).values()
                 if all(label in m["labelIds"] for label in label_ids)]  # fmt: skip
        found.sort(key=lambda m: int(m["internalDate"]), reverse=True)
        return found

    async def modify_thread(
        self, account_id: str, thread_id: str, add: Sequence[str], remove: Sequence[str]
    ) -> GmailJson:
        self._enter("modify_thread", account_id)
        members = self._thread(account_id, thread_id)
        for message in members:
            self._relabel(message, add, remove)
        return {"id": thread_id, "messages": [self._render(m, FETCH_MINIMAL) for m in members]}

    async def trash_thread(
        self, account_id: str, thread_id: str, *, undo: bool = False
    ) -> GmailJson:
        self._enter("untrash_thread" if undo else "trash_thread", account_id)
        members = self._thread(account_id, thread_id)
        for message in members:
            self._relabel(message, [] if undo else ["TRASH"], ["TRASH"] if undo else [])
        return {"id": thread_id, "messages": [self._render(m, FETCH_MINIMAL) for m in members]}

    # -- settings ---------------------------------------------------------------------------

    async def list_send_as(self, account_id: str) -> GmailJson:
        self._enter("list_send_as", account_id)
        primary = {"sendAsEmail": f"{account_id}@example.com", "displayName": "",
                   "signature": "", "isPrimary": True, "isDefault": True}  # fmt: skip
        return {"sendAs": [primary]}

    async def get_vacation(self, account_id: str) -> GmailJson:
        self._enter("get_vacation", account_id)
        return dict(self.vacation.get(account_id, {"enableAutoReply": False}))

    async def update_vacation(self, account_id: str, settings: Mapping[str, Any]) -> GmailJson:
        self._enter("update_vacation", account_id)
        self.vacation[account_id] = dict(settings)
        return dict(settings)


def _page(kind: str, items: list[GmailJson], options: ListOptions) -> GmailJson:
    """One page of a Gmail list answer: offset tokens, `kind` omitted when the page is empty."""
    start = int(options.get("page_token") or 0)
    size = options.get("max_results", LIST_PAGE_SIZE)
    result: GmailJson = {"resultSizeEstimate": len(items)}
    page = items[start : start + size]
    if page:
        result[kind] = page
    if start + size < len(items):
        result["nextPageToken"] = str(start + size)
    return result
