"""Gmail's message JSON made readable, and mail HTML made harmless.

HTML mail goes through `nh3` (the Rust `ammonia` sanitizer): a closed list of tags and
attributes, no `<script>`/`<style>`/forms/frames (removed with their content), no event
handlers, links only to http(s) and mailto (so no `javascript:`), each opened in a new context
with `rel="noopener noreferrer"`, inline styles only from a list of harmless properties (no
`position`, no `background-image`: nothing that overlays or fetches). Remote images lose their
`src` unless the user allowed remote content for this message; the count is shown instead.
What the sanitizer misses, the mail frame's own CSP still blocks (`security.mail_policy`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html import unescape
from typing import Any

import nh3

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "div", "em", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
})  # fmt: skip
ATTRIBUTES = {
    "*": {"id", "style", "title", "align", "dir", "lang"},  # ids get the prefix below
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width", "valign"},
    "th": {"colspan", "rowspan", "width", "valign"},
    "table": {"width", "cellpadding", "cellspacing", "border"},
    "font": {"color", "size"},
}
SAFE_CSS = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "text-align", "text-decoration", "line-height", "margin", "margin-top",
    "margin-bottom", "margin-left", "margin-right", "padding", "padding-top", "padding-bottom",
    "padding-left", "padding-right", "border", "border-collapse", "width", "max-width",
    "height", "vertical-align", "white-space",
})  # fmt: skip
REMOTE = ("http://", "https://", "//")
ID_PREFIX = "mail-"  # a mail's ids cannot collide with anything but its own frame


@dataclass(frozen=True, slots=True)
class AttachmentView:
    attachment_id: str
    filename: str
    mime_type: str
    size: int


@dataclass(slots=True)
class MessageView:
    id: str
    thread_id: str
    headers: dict[str, str]
    labels: tuple[str, ...]
    snippet: str
    text: str | None = None
    html: str | None = None
    attachments: list[AttachmentView] = field(default_factory=list)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def unread(self) -> bool:
        return "UNREAD" in self.labels


@dataclass(frozen=True, slots=True)
class SafeHtml:
    html: str
    blocked_remote: int  # remote images whose source was removed


def _decode(data: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return ""
    return raw.decode("utf-8", errors="replace")


def _parts(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield part
    for child in part.get("parts") or ():
        if isinstance(child, Mapping):
            yield from _parts(child)


def message_view(message: Mapping[str, Any]) -> MessageView:
    """The headers, first text and HTML bodies and the attachments of a format=full message."""
    payload = message.get("payload") or {}
    headers = {
        str(h.get("name", "")).lower(): str(h.get("value", ""))
        for h in payload.get("headers") or ()
    }
    view = MessageView(
        id=str(message.get("id", "")), thread_id=str(message.get("threadId", "")),
        headers=headers, labels=tuple(message.get("labelIds") or ()),
        snippet=unescape(str(message.get("snippet", ""))),  # Gmail sends it HTML-escaped
    )  # fmt: skip
    for part in _parts(payload):
        body = part.get("body") or {}
        mime = str(part.get("mimeType", "")).lower()
        if part.get("filename") and body.get("attachmentId"):
            view.attachments.append(AttachmentView(
                str(body["attachmentId"]), str(part["filename"]),
                mime or "application/octet-stream", int(body.get("size") or 0),
            ))  # fmt: skip
        elif mime == "text/plain" and view.text is None and "data" in body:
            view.text = _decode(str(body["data"]))
        elif mime == "text/html" and view.html is None and "data" in body:
            view.html = _decode(str(body["data"]))
    return view


def sanitize(html: str, *, remote_allowed: bool) -> SafeHtml:
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            lowered = value.strip().lower()
            if lowered.startswith(REMOTE):
                if remote_allowed:
                    return value
                blocked += 1
                return None
            return value if lowered.startswith("data:image/") else None
        if attribute == "href" and value.strip().lower().startswith("data:"):
            return None  # data: only for inline images, never as a link
        return value

    clean = nh3.clean(
        html, tags=set(TAGS), clean_content_tags={"script", "style", "title", "head"},
        attributes={k: set(v) for k, v in ATTRIBUTES.items()}, attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "data"}, link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=set(SAFE_CSS), url_relative="deny", id_prefix=ID_PREFIX,
    )  # fmt: skip
    return SafeHtml(clean, blocked)


def plain_text(html: str) -> str:
    """HTML reduced to its text (an operator's support read shows text only)."""
    text = nh3.clean(html, tags=set(), clean_content_tags={"script", "style", "title", "head"})
    return unescape(text)
