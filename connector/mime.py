"""Compose RFC 822 messages for Gmail (pure: no I/O, no clock beyond the Date header).

Every composed message gets a fresh, unique Message-ID: the client relies on it to settle an
unknown send outcome by searching `rfc822msgid:` instead of sending twice. Header values are
refused, not cleaned, when they contain CR or LF, because a silently "fixed" header hides an
injection attempt from whoever built it. A line break is any character `str.splitlines()`
breaks on (the email package folds and splits on those too, and fails on some of them), not only
CR and LF.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from connector.errors import CompositionError, HeaderInjectionError, MessageTooLargeError
from connector.ports import OutgoingMessage

MAX_RECIPIENTS = 100  # Gmail API limit per message (To + Cc + Bcc)
MAX_SEND_BYTES = 36_700_160  # 35 MB: messages.send and drafts create/update/send
DEFAULT_ID_DOMAIN = "connector.local"
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv)\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|wg)\s*:", re.IGNORECASE)
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_SMTP = policy.SMTP.clone(max_line_length=998)
# What str.splitlines() breaks on: CR, LF, VT, FF, FS, GS, RS, NEL, LINE and PARAGRAPH SEPARATOR
# (tests/gmail/test_mime.py checks this against every code point).
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_LINE_BREAK = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")
_LINE_BREAK_NAMES = "CR, LF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029"


def has_line_break(value: str) -> bool:
    """True when `value` would be more than one line to a mail header or a log reader."""
    return _LINE_BREAK.search(value) is not None


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ThreadContext:
    """What a reply or forward needs from the original message."""

    thread_id: str
    message_id: str  # the original's Message-ID header, e.g. "<abc@mail.gmail.com>"
    subject: str
    references: str = ""  # the original's References header, if any
    sender: str = ""  # the original's From (who a reply goes to by default)
    reply_to: str = ""

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> ThreadContext:
        """Build from a Gmail message resource fetched with format metadata or full."""
        payload = message.get("payload") or {}
        headers: dict[str, str] = {}
        for header in payload.get("headers") or []:
            headers.setdefault(str(header.get("name", "")).lower(), str(header.get("value", "")))
        return cls(
            thread_id=str(message["threadId"]),
            message_id=headers.get("message-id", "").strip(),
            subject=headers.get("subject", ""),
            references=headers.get("references", ""),
            sender=headers.get("from", ""),
            reply_to=headers.get("reply-to", ""),
        )


@dataclass(frozen=True, slots=True)
class Composition:
    """A message to compose; addresses are RFC 5322 strings ("Name <a@b>" or "a@b")."""

    sender: str
    to: Sequence[str] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    attachments: Sequence[Attachment] = ()
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def _check_header(name: str, value: str) -> None:
    if has_line_break(value):
        raise HeaderInjectionError(
            f"header {name} contains a line break; remove line breaks ({_LINE_BREAK_NAMES}) "
            "from the value"
        )


def _addresses(name: str, values: Iterable[str]) -> list[Address]:
    out: list[Address] = []
    for value in values:
        _check_header(name, value)
        pairs = getaddresses([value])
        if not pairs or any("@" not in addr for _, addr in pairs):
            raise CompositionError(f"{name} has an address without a domain; use name@domain")
        for display, addr in pairs:
            local, _, domain = addr.rpartition("@")
            if not local or not domain or any(c.isspace() for c in addr):
                raise CompositionError(f"{name} has a malformed address; use name@domain")
            out.append(Address(display_name=display, username=local, domain=domain))
    return out


def reply_subject(subject: str) -> str:
    """'Re: ' once, however many times the thread was already replied to."""
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def forward_subject(subject: str) -> str:
    return subject if _FORWARD_PREFIX.match(subject) else f"Fwd: {subject}"


def new_message_id(domain: str = DEFAULT_ID_DOMAIN) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def _references(context: ThreadContext) -> str:
    chain = _MSGID_RE.findall(context.references)
    if context.message_id and context.message_id not in chain:
        chain.append(context.message_id)
    return " ".join(chain)


def check_size(raw: bytes) -> None:
    """Gmail refuses uploads over 35 MB for send and drafts: fail before uploading."""
    if len(raw) > MAX_SEND_BYTES:
        raise MessageTooLargeError(
            f"message is {len(raw)} bytes; Gmail accepts at most {MAX_SEND_BYTES} bytes "
            "for send and drafts: remove or shrink attachments"
        )


def _build(
    draft: Composition,
    *,
    subject: str,
    thread: ThreadContext | None,
    forwarded: bytes | None,
    id_domain: str,
) -> OutgoingMessage:
    for name, value in (("Subject", subject), *draft.extra_headers.items()):
        _check_header(name, value)
    sender = _addresses("From", [draft.sender])
    if len(sender) != 1:
        raise CompositionError("From must be exactly one address")
    to, cc, bcc = (
        _addresses("To", draft.to),
        _addresses("Cc", draft.cc),
        _addresses("Bcc", draft.bcc),
    )
    count = len(to) + len(cc) + len(bcc)
    if count == 0:
        raise CompositionError("a message needs at least one recipient in To, Cc or Bcc")
    if count > MAX_RECIPIENTS:
        raise CompositionError(
            f"{count} recipients; Gmail accepts at most {MAX_RECIPIENTS} per message: "
            "split the message"
        )
    for attachment in draft.attachments:
        _check_header("attachment filename", attachment.filename)
        _check_header("attachment MIME type", attachment.mime_type)
        if not attachment.mime_type.partition("/")[2]:
            raise CompositionError("attachment MIME type must look like type/subtype")
    message_id = new_message_id(id_domain)
    try:
        raw = _message(
            draft, addresses=(sender, to, cc, bcc), subject=subject, thread=thread,
            forwarded=forwarded, message_id=message_id,
        )  # fmt: skip
    except UnicodeEncodeError:
        # JSON can carry a lone UTF-16 surrogate ("\ud800"), which no charset can encode.
        raise CompositionError(
            "the message holds a lone UTF-16 surrogate, which is not a Unicode character; "
            "send well-formed Unicode text"
        ) from None
    check_size(raw)
    return OutgoingMessage(
        raw=raw, message_id=message_id, thread_id=thread.thread_id if thread else None
    )


def _message(
    draft: Composition,
    *,
    addresses: tuple[list[Address], list[Address], list[Address], list[Address]],
    subject: str,
    thread: ThreadContext | None,
    forwarded: bytes | None,
    message_id: str,
) -> bytes:
    """The RFC 822 bytes of a checked composition."""
    sender, to, cc, bcc = addresses
    msg = EmailMessage(policy=_SMTP)
    msg["From"] = sender[0]
    for name, group in (("To", to), ("Cc", cc), ("Bcc", bcc)):
        if group:
            msg[name] = group
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    if thread is not None and thread.message_id:
        msg["In-Reply-To"] = thread.message_id
        msg["References"] = _references(thread)
    for name, value in draft.extra_headers.items():
        msg[name] = value
    msg.set_content(draft.text if draft.text is not None else "", charset="utf-8")
    if draft.html is not None:
        msg.add_alternative(draft.html, subtype="html", charset="utf-8")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        msg.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    if forwarded is not None:
        # Attached whole (message/rfc822) so the recipient gets the original intact.
        msg.add_attachment(message_from_bytes(forwarded, policy=_SMTP))
    return msg.as_bytes(policy=_SMTP)


def compose(draft: Composition, *, id_domain: str = DEFAULT_ID_DOMAIN) -> OutgoingMessage:
    """A new message (new thread)."""
    return _build(draft, subject=draft.subject, thread=None, forwarded=None, id_domain=id_domain)


def compose_reply(
    draft: Composition, original: ThreadContext, *, id_domain: str = DEFAULT_ID_DOMAIN
) -> OutgoingMessage:
    """A reply in the original's thread: threadId, In-Reply-To, References, 'Re: ' subject.

    With no recipients given, the reply goes to the original's Reply-To, else its From.
    """
    if not (draft.to or draft.cc or draft.bcc):
        target = original.reply_to or original.sender
        draft = Composition(**{**_fields(draft), "to": (target,) if target else ()})
    subject = reply_subject(draft.subject or original.subject)
    return _build(draft, subject=subject, thread=original, forwarded=None, id_domain=id_domain)


def compose_forward(
    draft: Composition,
    original: ThreadContext,
    original_raw: bytes | None = None,
    *,
    id_domain: str = DEFAULT_ID_DOMAIN,
) -> OutgoingMessage:
    """A forward kept in the original's thread, the original attached as message/rfc822."""
    subject = forward_subject(draft.subject or original.subject)
    return _build(
        draft, subject=subject, thread=original, forwarded=original_raw, id_domain=id_domain
    )


def _fields(draft: Composition) -> dict[str, Any]:
    return {name: getattr(draft, name) for name in Composition.__dataclass_fields__}
