"""RFC 822 bytes → Gmail's `payload` part tree, snippet and attachment bytes.

Gmail derives everything it returns for `format=full` from the stored message, so the emulator
stores raw bytes and parses them once with the stdlib `email` package (compat32 policy: it is the
fastest and keeps header values as written, which we then decode like Gmail does).
"""

from __future__ import annotations

import base64
import email
import email.header
import email.message
import hashlib
import html
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

SNIPPET_LENGTH = 200
_TAG_RE = re.compile(r"<[^>]+>")
_WS_RE = re.compile(r"\s+")
_STYLE_RE = re.compile(r"(?is)<(style|script)[^>]*>.*?</\1>")


def b64url(data: bytes) -> str:
    """URL-safe base64 with padding kept, as Gmail encodes `raw` and `body.data`."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode URL-safe (or standard) base64, tolerating missing padding like Gmail does."""
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.urlsafe_b64decode(cleaned.encode("ascii"))


def decode_header_value(value: str) -> str:
    """Decode RFC 2047 encoded-words and unfold, as Gmail presents header values."""
    unfolded = value.replace("\r\n", "").replace("\n", "")
    if "=?" not in unfolded:
        return unfolded
    try:
        return str(email.header.make_header(email.header.decode_header(unfolded)))
    except (ValueError, LookupError, UnicodeDecodeError):
        return unfolded


@dataclass(slots=True)
class ParsedMessage:
    """Everything derived from a message's bytes; immutable once built."""

    headers: list[dict[str, str]]
    payload: dict[str, Any]
    snippet: str
    attachments: dict[str, bytes] = field(default_factory=dict)
    has_attachment: bool = False
    text: str = ""  # lower-cased plain text used by free-text search
    filenames: list[str] = field(default_factory=list)
    # Lower-cased header values joined per lower-cased name: search runs over thousands of
    # messages per request, so the per-message check must be one dict lookup.
    search_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        lname = name.lower()
        for h in self.headers:
            if h["name"].lower() == lname:
                return h["value"]
        return ""

    def addresses(self, *names: str) -> list[str]:
        values = [h["value"] for h in self.headers if h["name"].lower() in names]
        return [addr.lower() for _, addr in getaddresses(values) if addr]


def _part_headers(msg: email.message.Message) -> list[dict[str, str]]:
    return [{"name": k, "value": decode_header_value(str(v))} for k, v in msg.items()]


def _decoded_payload(part: email.message.Message) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return b""


def _text_of(part: email.message.Message, data: bytes) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _attachment_id(message_key: str, part_id: str) -> str:
    # Gmail's ids are long opaque strings; derive a stable one so repeated gets agree.
    digest = hashlib.sha256(f"{message_key}:{part_id}".encode()).digest()
    return "ANGjdJ" + base64.urlsafe_b64encode(digest * 2).decode("ascii").rstrip("=")


class _Builder:
    def __init__(self, message_key: str) -> None:
        self.message_key = message_key
        self.attachments: dict[str, bytes] = {}
        self.filenames: list[str] = []
        self.plain: list[str] = []
        self.html: list[str] = []

    def build(self, part: email.message.Message, part_id: str) -> dict[str, Any]:
        filename = part.get_filename() or ""
        filename = decode_header_value(filename) if filename else ""
        node: dict[str, Any] = {
            "partId": part_id,
            "mimeType": part.get_content_type(),
            "filename": filename,
            "headers": _part_headers(part),
        }
        if part.is_multipart():
            node["body"] = {"size": 0}
            children = part.get_payload()
            assert isinstance(children, list)
            prefix = f"{part_id}." if part_id else ""
            node["parts"] = [self.build(child, f"{prefix}{i}") for i, child in enumerate(children)]
            return node
        data = _decoded_payload(part)
        if filename:
            att_id = _attachment_id(self.message_key, part_id)
            self.attachments[att_id] = data
            self.filenames.append(filename.lower())
            node["body"] = {"attachmentId": att_id, "size": len(data)}
            return node
        node["body"] = {"size": len(data), "data": b64url(data)} if data else {"size": 0}
        ctype = node["mimeType"]
        if ctype == "text/plain":
            self.plain.append(_text_of(part, data))
        elif ctype == "text/html":
            self.html.append(_text_of(part, data))
        return node


def _snippet_source(plain: list[str], html_parts: list[str]) -> str:
    if plain:
        return " ".join(plain)
    text = " ".join(html_parts)
    text = _STYLE_RE.sub(" ", text)
    return html.unescape(_TAG_RE.sub(" ", text))


def parse_message(raw: bytes, message_key: str) -> ParsedMessage:
    """Parse stored bytes; `message_key` makes attachment ids unique per stored message."""
    msg = email.message_from_bytes(raw)
    builder = _Builder(message_key)
    payload = builder.build(msg, "")
    source = _WS_RE.sub(" ", _snippet_source(builder.plain, builder.html)).strip()
    # Gmail HTML-escapes snippets with decimal entities (' becomes &#39;, not &#x27;).
    snippet = html.escape(source[:SNIPPET_LENGTH], quote=True).replace("&#x27;", "&#39;")
    headers = payload["headers"]
    searchable = " ".join([source, *(h["value"] for h in headers)]).lower()
    search_headers: dict[str, str] = {}
    for h in headers:
        key = h["name"].lower()
        value = h["value"].lower()
        search_headers[key] = f"{search_headers[key]}\n{value}" if key in search_headers else value
    return ParsedMessage(
        headers=headers,
        payload=payload,
        snippet=snippet,
        attachments=builder.attachments,
        has_attachment=bool(builder.attachments),
        text=searchable,
        filenames=builder.filenames,
        search_headers=search_headers,
    )
