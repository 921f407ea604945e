"""Gmail v1 `users.messages` handlers (and `messages.attachments.get`)."""

from __future__ import annotations

from datetime import UTC
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from connector.emulator import errors, sending
from connector.emulator.gmail_call import Call, label_changes, paginate
from connector.emulator.mime_parse import b64url
from connector.emulator.render import parse_format, render_message
from connector.emulator.state import Message

_HEADERS = BytesHeaderParser()


def messages_list(call: Call) -> dict[str, Any]:
    start, size = call.page()
    return paginate(call.matching(), start, size, "messages", Message.stub)


def messages_get(call: Call) -> dict[str, Any]:
    msg = call.message()
    fmt = parse_format(call.arg("format"))
    return render_message(msg, fmt, call.args("metadataHeaders"), call.box)


def messages_send(call: Call) -> dict[str, Any]:
    raw, thread_id, _labels = call.message_source(None)
    sent = sending.send(call.state, call.box, raw, thread_id)
    # The stored message's labels: sent to oneself it is also in INBOX (and UNREAD).
    return {"id": sent.id, "threadId": sent.thread_id, "labelIds": list(sent.label_ids)}


def _store(call: Call, default_date_source: str) -> dict[str, Any]:
    raw, thread_id, labels = call.message_source(None)
    call.check_labels(labels)
    source = call.arg("internalDateSource") or default_date_source
    if source not in ("receivedTime", "dateHeader"):
        raise errors.invalid_argument(f"Invalid value for internalDateSource: {source}")
    date = _date_header_ms(raw) if source == "dateHeader" else None
    msg = call.box.add_message(raw, labels, thread_id=thread_id, internal_date=date)
    return msg.minimal()


def _date_header_ms(raw: bytes) -> int | None:
    """The Date header in ms since the epoch; None (the receipt time) when absent or bad."""
    value = _HEADERS.parsebytes(raw).get("date")
    try:
        when = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def messages_insert(call: Call) -> dict[str, Any]:
    """messages.insert: stored as given; internalDate is the receipt time unless asked."""
    return _store(call, "receivedTime")


def messages_import(call: Call) -> dict[str, Any]:
    """messages.import: like insert, but Gmail's default internalDateSource is the Date header."""
    return _store(call, "dateHeader")


def messages_modify(call: Call) -> dict[str, Any]:
    msg = call.message()
    add, remove = label_changes(call.json())
    call.check_labels(add + remove)
    call.box.modify(msg, add, remove)
    return msg.minimal()


def messages_batch_modify(call: Call) -> None:
    data = call.json()
    add, remove = label_changes(data)
    call.check_labels(add + remove)
    for mid in data.get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.modify(msg, add, remove)


def messages_trash(call: Call) -> dict[str, Any]:
    msg = call.message()
    call.box.modify(msg, ["TRASH"], [])
    return msg.minimal()


def messages_untrash(call: Call) -> dict[str, Any]:
    msg = call.message()
    call.box.modify(msg, [], ["TRASH"])
    return msg.minimal()


def messages_delete(call: Call) -> None:
    call.box.delete_message(call.message())


def messages_batch_delete(call: Call) -> None:
    for mid in call.json().get("ids") or []:
        msg = call.box.messages.get(str(mid).lower())
        if msg is not None:
            call.box.delete_message(msg)


def attachments_get(call: Call) -> dict[str, Any]:
    """Gmail answers `{size, data}` (no attachmentId) for any id a get of this message issued."""
    msg = call.message("messageId")
    owner, stable = call.box.attachment_aliases.get(call.params["id"], ("", ""))
    data = msg.parsed.attachments.get(stable) if owner == msg.id else None
    if data is None:
        raise errors.invalid_argument("Invalid attachment token")
    return {"size": len(data), "data": b64url(data)}
