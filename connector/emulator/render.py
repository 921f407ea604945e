"""Message and thread resources in each `format`, plus `fields` partial responses."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from connector.emulator import errors
from connector.emulator.mime_parse import b64url
from connector.emulator.state import Mailbox, Message


class Format(StrEnum):
    FULL = "full"
    METADATA = "metadata"
    MINIMAL = "minimal"
    RAW = "raw"


def parse_format(value: str | None) -> Format:
    if value is None or value == "":
        return Format.FULL
    try:
        return Format(value.lower())
    except ValueError:
        raise errors.invalid_argument(f"Invalid value at 'format' (\"{value}\")") from None


def _with_fresh_attachment_ids(box: Mailbox, msg: Message, part: dict[str, Any]) -> dict[str, Any]:
    """A copy of the part tree whose attachment ids are new for this get, as Gmail's are."""
    out = dict(part)
    body = part.get("body")
    if isinstance(body, dict) and "attachmentId" in body:
        out["body"] = {**body, "attachmentId": box.attachment_alias(msg.id, body["attachmentId"])}
    if "parts" in part:
        out["parts"] = [_with_fresh_attachment_ids(box, msg, p) for p in part["parts"]]
    return out


def render_message(
    msg: Message,
    fmt: Format,
    metadata_headers: list[str] | None = None,
    box: Mailbox | None = None,
) -> dict[str, Any]:
    """`box` given: attachment ids in a full payload are fresh aliases (see `attachments_get`)."""
    out: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id}
    if msg.label_ids:
        out["labelIds"] = list(msg.label_ids)
    parsed = msg.parsed
    out["snippet"] = parsed.snippet
    if fmt is Format.FULL:
        payload = parsed.payload
        if box is not None and parsed.has_attachment:
            payload = _with_fresh_attachment_ids(box, msg, payload)
        out["payload"] = payload
    elif fmt is Format.METADATA:
        headers = parsed.headers
        if metadata_headers:
            wanted = {name.lower() for name in metadata_headers}
            headers = [h for h in headers if h["name"].lower() in wanted]
        # Gmail's metadata payload is the top part's type and headers only: no partId,
        # filename or body.
        out["payload"] = {"mimeType": parsed.payload["mimeType"], "headers": headers}
    out["sizeEstimate"] = len(msg.raw)
    if fmt is Format.RAW:
        out["raw"] = b64url(msg.raw)
    out["historyId"] = str(msg.history_id)
    out["internalDate"] = str(msg.internal_date)
    return out


def render_thread(
    box: Mailbox, thread_id: str, fmt: Format, metadata_headers: list[str] | None = None
) -> dict[str, Any]:
    messages = box.threads[thread_id]
    return {
        "id": thread_id,
        "historyId": str(box.thread_history_id(thread_id)),
        "messages": [render_message(m, fmt, metadata_headers, box) for m in messages],
    }


# -- fields= partial responses -------------------------------------------------------------
FieldTree = dict[str, "FieldTree"]


def parse_fields(spec: str) -> FieldTree:
    """Parse `a,b/c,d(e,f)` into a nested selection tree; an empty subtree means "all"."""
    pos = 0

    def parse_list(end: str | None) -> FieldTree:
        nonlocal pos
        result: FieldTree = {}
        while pos < len(spec):
            if end is not None and spec[pos] == end:
                pos += 1
                return result
            if spec[pos] in ", ":
                pos += 1
                continue
            start = pos
            while pos < len(spec) and spec[pos] not in ",()":
                pos += 1
            path = spec[start:pos].strip().split("/")
            node = result
            for segment in path[:-1]:
                node = node.setdefault(segment, {})
            leaf = node.setdefault(path[-1], {})
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                leaf.update(parse_list(")"))
        if end is not None:
            raise errors.invalid_argument(f"Invalid field selection {spec}")
        return result

    return parse_list(None)


def apply_fields(value: Any, tree: FieldTree) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [apply_fields(item, tree) for item in value]
    if isinstance(value, dict):
        return {k: apply_fields(value[k], sub) for k, sub in tree.items() if k in value}
    return value
