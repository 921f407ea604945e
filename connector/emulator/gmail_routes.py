"""Gmail v1 method handlers. Each takes a `Call` and returns the JSON resource (None → 204).

Handlers are synchronous and never await: state is in memory, and that keeps them lean.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.emulator import errors, sending
from connector.emulator.mime_parse import b64url, b64url_decode
from connector.emulator.query import parse_query
from connector.emulator.render import Format, parse_format, render_message, render_thread
from connector.emulator.state import (
    Draft,
    EmulatorState,
    HistoryType,
    Mailbox,
    Message,
    parse_id,
)
from connector.emulator.upload import parse_upload

DEFAULT_PAGE = 100
MAX_PAGE = 500


@dataclass(slots=True)
class Call:
    state: EmulatorState
    box: Mailbox
    params: dict[str, str]
    query: Mapping[str, list[str]]
    body: bytes
    content_type: str
    upload: bool

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, ()))

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() == "true"

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            loaded = json.loads(self.body)
        except ValueError:
            raise errors.bad_request("Invalid JSON payload received.") from None
        if not isinstance(loaded, dict):
            raise errors.bad_request("Invalid JSON payload received.")
        return loaded


Handler = Callable[[Call], dict[str, Any] | None]


# -- helpers -------------------------------------------------------------------------------
def _message(call: Call, key: str = "id") -> Message:
    value = call.params[key]
    if parse_id(value) is None:
        raise errors.invalid_id()
    msg = call.box.messages.get(value.lower())
    if msg is None:
        raise errors.not_found()
    return msg


def _thread_id(call: Call) -> str:
    value = call.params["id"]
    if parse_id(value) is None:
        raise errors.invalid_id()
    if value.lower() not in call.box.threads:
        raise errors.not_found()
    return value.lower()


def _page(call: Call) -> tuple[int, int]:
    raw_max = call.arg("maxResults")
    try:
        size = DEFAULT_PAGE if raw_max is None else int(raw_max)
    except ValueError:
        raise errors.invalid_argument(f"Invalid value for maxResults: {raw_max}") from None
    if size < 0:
        raise errors.invalid_argument(f"Invalid value for maxResults: {raw_max}")
    size = min(size or DEFAULT_PAGE, MAX_PAGE)
    token = call.arg("pageToken")
    if not token:
        return 0, size
    if not token.isdigit():
        raise errors.invalid_argument("Invalid pageToken")
    return int(token), size


def _paginate(
    items: list[Any], start: int, size: int, key: str, render: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    if not items:
        return {"resultSizeEstimate": 0}
    window = items[start : start + size]
    out: dict[str, Any] = {}
    if window:
        out[key] = [render(item) for item in window]
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    out["resultSizeEstimate"] = len(items)
    return out


def _check_labels(box: Mailbox, label_ids: list[str]) -> None:
    for label_id in label_ids:
        if label_id not in box.labels:
            raise errors.invalid_argument(f"Invalid label: {label_id}")


SEARCH_CACHE_SIZE = 64


def _matching(call: Call) -> list[Message]:
    """Matching messages newest first, cached per mailbox until the next history change.

    Clients page through the same search and benchmarks repeat it; the cache key includes
    the mailbox historyId, which every mutation bumps, so a hit is always current.
    """
    box = call.box
    key = (call.arg("q") or "", tuple(call.args("labelIds")), call.flag("includeSpamTrash"))
    cached = box.search_cache.get(key)
    if cached is not None and cached[0] == box.history_id:
        return cached[1]
    found = _search(call)
    if len(box.search_cache) >= SEARCH_CACHE_SIZE:
        box.search_cache.clear()
    box.search_cache[key] = (box.history_id, found)
    return found


def _search(call: Call) -> list[Message]:
    box = call.box
    query = parse_query(call.arg("q"))
    label_ids = call.args("labelIds")
    include_spam_trash = call.flag("includeSpamTrash") or query.mentions_spam_trash
    hidden = set() if include_spam_trash else {"SPAM", "TRASH"} - set(label_ids)
    candidates: list[Message] = box.order[::-1]
    # Cheapest filters first; each is a single comprehension over the mailbox.
    if hidden:
        candidates = [m for m in candidates if hidden.isdisjoint(m.label_ids)]
    for label in label_ids:
        candidates = [m for m in candidates if label in m.label_ids]
    predicate = query.predicate
    if predicate is not None:
        candidates = [m for m in candidates if predicate(m, box)]
    return candidates


def _decode_raw(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise errors.invalid_argument(
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
        )
    try:
        return b64url_decode(value)
    except (binascii.Error, ValueError):
        raise errors.invalid_argument("Invalid value for ByteString: " + value[:16]) from None


def _message_source(call: Call, body_key: str | None) -> tuple[bytes, str | None, list[str]]:
    """(raw bytes, threadId, labelIds) from a JSON body or an upload; `body_key` nests it."""
    if call.upload:
        metadata, raw = parse_upload(call.arg("uploadType"), call.content_type, call.body)
        resource = metadata.get(body_key, {}) if body_key else metadata
    else:
        data = call.json()
        resource = data.get(body_key, {}) if body_key else data
        if not isinstance(resource, dict):
            raise errors.bad_request("Invalid JSON payload received.")
        raw = _decode_raw(resource.get("raw"))
    if not isinstance(resource, dict):
        resource = {}
    thread = resource.get("threadId")
    labels = resource.get("labelIds") or []
    if thread is not None and (not isinstance(thread, str) or parse_id(thread) is None):
        raise errors.invalid_id()
    return raw, thread.lower() if isinstance(thread, str) else None, list(labels)


# -- users / labels ------------------------------------------------------------------------
def get_profile(call: Call) -> dict[str, Any]:
    box = call.box
    return {
        "emailAddress": box.email,
        "messagesTotal": len(box.messages),
        "threadsTotal": len(box.threads),
        "historyId": str(box.history_id),
    }


def labels_list(call: Call) -> dict[str, Any]:
    return {"labels": [label.resource() for label in call.box.labels.values()]}


def _label_counts(box: Mailbox, label_id: str) -> dict[str, Any]:
    messages = [m for m in box.messages.values() if label_id in m.label_ids]
    unread = [m for m in messages if "UNREAD" in m.label_ids]
    return {
        "messagesTotal": len(messages),
        "messagesUnread": len(unread),
        "threadsTotal": len({m.thread_id for m in messages}),
        "threadsUnread": len({m.thread_id for m in unread}),
    }


def labels_get(call: Call) -> dict[str, Any]:
    label = call.box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    return {**label.resource(), **_label_counts(call.box, label.id)}


def labels_create(call: Call) -> dict[str, Any]:
    data = call.json()
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid_argument("Invalid label name")
    if call.box.label_by_name(name) is not None:
        raise errors.GmailError(409, "Label name exists or conflicts", errors.Reason.DUPLICATE)
    label = call.box.create_label(
        name.strip(),
        messageListVisibility=data.get("messageListVisibility"),
        labelListVisibility=data.get("labelListVisibility"),
    )
    return label.resource()


def labels_update(call: Call) -> dict[str, Any]:
    label = call.box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    if label.type == "system":
        raise errors.invalid_argument("Invalid label: cannot modify system label")
    data = call.json()
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        label.name = name.strip()
        call.box.search_cache.clear()  # label: queries match by name
    if isinstance(data.get("messageListVisibility"), str):
        label.message_list_visibility = data["messageListVisibility"]
    if isinstance(data.get("labelListVisibility"), str):
        label.label_list_visibility = data["labelListVisibility"]
    return label.resource()


def labels_delete(call: Call) -> None:
    box = call.box
    label = box.labels.get(call.params["id"])
    if label is None:
        raise errors.not_found()
    if label.type == "system":
        raise errors.invalid_argument("Invalid label: cannot delete system label")
    for msg in list(box.messages.values()):
        if label.id in msg.label_ids:
            box.modify(msg, [], [label.id])
    del box.labels[label.id]


# -- messages ------------------------------------------------------------------------------
def messages_list(call: Call) -> dict[str, Any]:
    start, size = _page(call)
    return _paginate(_matching(call), start, size, "messages", Message.stub)


def messages_get(call: Call) -> dict[str, Any]:
    msg = _message(call)
    return render_message(msg, parse_format(call.arg("format")), call.args("metadataHeaders"))


def messages_send(call: Call) -> dict[str, Any]:
    raw, thread_id, _labels = _message_source(call, None)
    sent = sending.send(call.state, call.box, raw, thread_id)
    return {"id": sent.id, "threadId": sent.thread_id, "labelIds": ["SENT"]}


def _store(call: Call) -> dict[str, Any]:
    raw, thread_id, labels = _message_source(call, None)
    _check_labels(call.box, labels)
    msg = call.box.add_message(raw, labels, thread_id=thread_id)
    return msg.minimal()


def messages_modify(call: Call) -> dict[str, Any]:
    msg = _message(call)
    data = call.json()
    add, remove = list(data.get("addLabelIds") or []), list(data.get("removeLabelIds") or [])
    _check_labels(call.box, add + remove)
    call.box.modify(msg, add, remove)
    return msg.minimal()


def messages_batch_modify(call: Call) -> None:
    data = call.json()
    add, remove = list(data.get("addLabelIds") or []), list(data.get("removeLabelIds") or [])
    _check_labels(call.box, add + remove)
    for mid in data.get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.modify(msg, add, remove)


def messages_trash(call: Call) -> dict[str, Any]:
    msg = _message(call)
    call.box.modify(msg, ["TRASH"], [])
    return msg.minimal()


def messages_untrash(call: Call) -> dict[str, Any]:
    msg = _message(call)
    call.box.modify(msg, [], ["TRASH"])
    return msg.minimal()


def messages_delete(call: Call) -> None:
    call.box.delete_message(_message(call))


def messages_batch_delete(call: Call) -> None:
    for mid in call.json().get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.delete_message(msg)


def attachments_get(call: Call) -> dict[str, Any]:
    msg = _message(call, "messageId")
    data = msg.parsed.attachments.get(call.params["id"])
    if data is None:
        raise errors.invalid_argument("Invalid attachment token")
    return {"attachmentId": call.params["id"], "size": len(data), "data": b64url(data)}


# -- threads -------------------------------------------------------------------------------
def threads_list(call: Call) -> dict[str, Any]:
    start, size = _page(call)
    seen: dict[str, None] = {}
    for msg in _matching(call):
        seen.setdefault(msg.thread_id, None)
    box = call.box

    def stub(thread_id: str) -> dict[str, Any]:
        last = box.threads[thread_id][-1]
        return {
            "id": thread_id,
            "snippet": last.parsed.snippet,
            "historyId": str(box.thread_history_id(thread_id)),
        }

    return _paginate(list(seen), start, size, "threads", stub)


def threads_get(call: Call) -> dict[str, Any]:
    thread_id = _thread_id(call)
    fmt = parse_format(call.arg("format"))
    if fmt is Format.RAW:
        raise errors.invalid_argument("Invalid format: RAW is not supported for threads")
    return render_thread(call.box, thread_id, fmt, call.args("metadataHeaders"))


def _thread_modify(call: Call, add: list[str], remove: list[str]) -> dict[str, Any]:
    thread_id = _thread_id(call)
    _check_labels(call.box, add + remove)
    for msg in list(call.box.threads[thread_id]):
        call.box.modify(msg, add, remove)
    return render_thread(call.box, thread_id, Format.MINIMAL)


def threads_modify(call: Call) -> dict[str, Any]:
    data = call.json()
    return _thread_modify(
        call, list(data.get("addLabelIds") or []), list(data.get("removeLabelIds") or [])
    )


def threads_trash(call: Call) -> dict[str, Any]:
    return _thread_modify(call, ["TRASH"], [])


def threads_untrash(call: Call) -> dict[str, Any]:
    return _thread_modify(call, [], ["TRASH"])


def threads_delete(call: Call) -> None:
    thread_id = _thread_id(call)
    for msg in list(call.box.threads[thread_id]):
        call.box.delete_message(msg)


# -- drafts --------------------------------------------------------------------------------
def _draft(call: Call, draft_id: str | None = None) -> str:
    value = draft_id if draft_id is not None else call.params["id"]
    if value not in call.box.drafts:
        raise errors.not_found()
    return value


def _draft_resource(call: Call, draft_id: str) -> dict[str, Any]:
    msg = call.box.drafts[draft_id].message
    return {
        "id": draft_id,
        "message": {"id": msg.id, "threadId": msg.thread_id, "labelIds": list(msg.label_ids)},
    }


def _store_draft(call: Call, draft_id: str | None) -> dict[str, Any]:
    raw, thread_id, _labels = _message_source(call, "message")
    if len(raw) > sending.SEND_SIZE_LIMIT:
        raise errors.invalid_argument(
            f"Request payload size exceeds the limit: {sending.SEND_SIZE_LIMIT} bytes."
        )
    box = call.box
    if thread_id is not None and thread_id not in box.threads:
        raise errors.not_found()
    if draft_id is not None:
        old = box.drafts[draft_id].message
        thread_id = thread_id or (old.thread_id if old.thread_id != old.id else None)
        box.delete_message(old)
    msg = box.add_message(raw, ["DRAFT"], thread_id=thread_id)
    new_id = draft_id or box.new_draft_id()
    box.drafts[new_id] = Draft(new_id, msg)
    return _draft_resource(call, new_id)


def drafts_create(call: Call) -> dict[str, Any]:
    return _store_draft(call, None)


def drafts_update(call: Call) -> dict[str, Any]:
    return _store_draft(call, _draft(call))


def drafts_get(call: Call) -> dict[str, Any]:
    draft_id = _draft(call)
    msg = call.box.drafts[draft_id].message
    fmt = parse_format(call.arg("format"))
    return {"id": draft_id, "message": render_message(msg, fmt)}


def drafts_list(call: Call) -> dict[str, Any]:
    start, size = _page(call)
    box = call.box
    query = parse_query(call.arg("q"))
    drafts = [d for d in reversed(box.drafts.values()) if query.matches(d.message, box)]
    return _paginate(
        drafts,
        start,
        size,
        "drafts",
        lambda d: {"id": d.id, "message": d.message.stub()},
    )


def drafts_delete(call: Call) -> None:
    draft_id = _draft(call)
    draft = call.box.drafts.pop(draft_id)
    call.box.delete_message(draft.message)


def drafts_send(call: Call) -> dict[str, Any]:
    box = call.box
    if call.upload:
        metadata, _raw = parse_upload(call.arg("uploadType"), call.content_type, call.body)
        draft_id = metadata.get("id")
        if isinstance(draft_id, str) and draft_id in box.drafts:
            _store_draft(call, draft_id)
    else:
        data = call.json()
        draft_id = data.get("id")
        if not isinstance(draft_id, str) or not draft_id:
            if isinstance(data.get("message"), dict) and data["message"].get("raw"):
                created = _store_draft(call, None)
                draft_id = created["id"]
            else:
                raise errors.invalid_argument("Invalid draft")
        elif isinstance(data.get("message"), dict) and data["message"].get("raw"):
            _store_draft(call, _draft(call, draft_id))
    if not isinstance(draft_id, str):
        raise errors.invalid_argument("Invalid draft")
    draft = box.drafts.pop(_draft(call, draft_id))
    msg = draft.message
    thread_id = msg.thread_id if msg.thread_id != msg.id else None
    box.delete_message(msg)
    sent = sending.send(call.state, box, msg.raw, thread_id)
    return {"id": sent.id, "threadId": sent.thread_id, "labelIds": ["SENT"]}


# -- history -------------------------------------------------------------------------------
def history_list(call: Call) -> dict[str, Any]:
    box = call.box
    start_raw = call.arg("startHistoryId")
    if start_raw is None or not start_raw.isdigit():
        raise errors.invalid_argument("Missing/invalid parameter: startHistoryId")
    start = int(start_raw)
    if start < box.history_floor:
        raise errors.not_found()
    types = {
        HistoryType(t) for t in call.args("historyTypes") if t in HistoryType._value2member_map_
    }
    label_filter = call.arg("labelId")
    first, size = _page(call)
    records = [
        r
        for r in box.history
        if r.id > start
        and (not types or r.type in types)
        and (
            label_filter is None
            or label_filter in r.message.label_ids
            or label_filter in r.label_ids
        )
    ]
    out: dict[str, Any] = {}
    window = records[first : first + size]
    if window:
        out["history"] = [r.resource() for r in window]
    if first + size < len(records):
        out["nextPageToken"] = str(first + size)
    out["historyId"] = str(box.history_id)
    return out


HANDLERS: dict[str, Handler] = {
    "getProfile": get_profile,
    "labels.list": labels_list,
    "labels.get": labels_get,
    "labels.create": labels_create,
    "labels.update": labels_update,
    "labels.patch": labels_update,
    "labels.delete": labels_delete,
    "messages.list": messages_list,
    "messages.get": messages_get,
    "messages.send": messages_send,
    "messages.insert": _store,
    "messages.import": _store,
    "messages.modify": messages_modify,
    "messages.batchModify": messages_batch_modify,
    "messages.trash": messages_trash,
    "messages.untrash": messages_untrash,
    "messages.delete": messages_delete,
    "messages.batchDelete": messages_batch_delete,
    "messages.attachments.get": attachments_get,
    "threads.list": threads_list,
    "threads.get": threads_get,
    "threads.modify": threads_modify,
    "threads.trash": threads_trash,
    "threads.untrash": threads_untrash,
    "threads.delete": threads_delete,
    "drafts.create": drafts_create,
    "drafts.update": drafts_update,
    "drafts.get": drafts_get,
    "drafts.list": drafts_list,
    "drafts.delete": drafts_delete,
    "drafts.send": drafts_send,
    "history.list": history_list,
}
