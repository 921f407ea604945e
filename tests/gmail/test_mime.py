"""MIME composition: headers, threading, recipients, size, non-ASCII."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from connector import mime
from connector.gmail.errors import CompositionError, MessageTooLargeError
from connector.mime import Attachment, Composition, ThreadContext


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def to_bob(**fields: Any) -> Composition:
    """A composition from me to Bob with the subject "Hi"; `fields` replace or add to those."""
    return Composition(
        **{"sender": "me@example.com", "to": ["bob@example.com"], "subject": "Hi"} | fields
    )


def test_plain_message_has_unique_message_id_and_headers():
    """Two compositions get distinct Message-IDs, exposed on OutgoingMessage."""
    draft = to_bob(text="x")
    first, second = mime.compose(draft), mime.compose(draft)
    assert first.message_id != second.message_id
    parsed = parse(first.raw)
    assert parsed["Message-ID"] == first.message_id
    assert parsed["To"] == "bob@example.com"
    assert parsed["Subject"] == "Hi"
    assert first.thread_id is None


def test_html_and_attachment_structure():
    """Text + HTML become multipart/alternative inside multipart/mixed with the attachment."""
    draft = to_bob(
        subject="Report",
        text="plain",
        html="<p>rich</p>",
        attachments=[Attachment("report.pdf", b"%PDF-1.4 data", "application/pdf")],
    )
    parsed = parse(mime.compose(draft).raw)
    assert parsed.get_content_type() == "multipart/mixed"
    body = parsed.get_body(preferencelist=("html",))
    assert body is not None
    assert "rich" in body.get_content()
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["report.pdf"]
    assert attachments[0].get_content() == b"%PDF-1.4 data"


def test_non_ascii_round_trips():
    """Non-ASCII subject, names, body and filename are encoded and decode back intact."""
    draft = Composition(
        sender="Zoë Ñandú <zoe@example.com>",
        to=["Jürgen <j@example.com>"],
        subject="Grüße — 日本語",
        text="Ça va? 你好",
        attachments=[Attachment("résumé.txt", "é".encode(), "text/plain")],
    )
    raw = mime.compose(draft).raw
    raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # top-level headers are RFC 2047 encoded
    parsed = parse(raw)
    assert parsed["Subject"] == "Grüße — 日本語"
    assert parsed["From"].addresses[0].display_name == "Zoë Ñandú"
    assert parsed.get_body(preferencelist=("plain",)).get_content().strip() == "Ça va? 你好"
    assert next(parsed.iter_attachments()).get_filename() == "résumé.txt"


@pytest.mark.parametrize(
    "field",
    ["subject", "to", "cc", "bcc", "sender", "extra", "filename"],
)
def test_header_injection_is_rejected(field):
    """CR or LF in any header value raises CompositionError instead of adding headers."""
    evil = "x@example.com\r\nBcc: victim@example.com"
    kwargs: dict[str, Any] = {"text": "x"}
    if field == "subject":
        kwargs["subject"] = "Hi\nBcc: victim@example.com"
    elif field in ("to", "cc", "bcc"):
        kwargs[field] = [evil]
    elif field == "sender":
        kwargs["sender"] = evil
    elif field == "extra":
        kwargs["extra_headers"] = {"X-Tag": "a\rb"}
    else:
        kwargs["attachments"] = [Attachment("a\nb.txt", b"x", "text/plain")]
    with pytest.raises(CompositionError, match="line break"):
        mime.compose(to_bob(**kwargs))


def test_recipient_limit():
    """100 recipients are accepted across To/Cc/Bcc; 101 are refused."""
    to = [f"u{i}@example.com" for i in range(50)]
    cc = [f"c{i}@example.com" for i in range(30)]
    bcc = [f"b{i}@example.com" for i in range(20)]
    mime.compose(Composition(sender="me@example.com", to=to, cc=cc, bcc=bcc, text="x"))
    with pytest.raises(CompositionError, match="at most 100"):
        mime.compose(
            Composition(sender="me@example.com", to=to, cc=cc, bcc=[*bcc, "x@example.com"])
        )


def test_malformed_and_missing_recipients():
    """Addresses without a domain, or no recipients at all, are refused."""
    with pytest.raises(CompositionError, match="domain"):
        mime.compose(Composition(sender="me@example.com", to=["bob"]))
    with pytest.raises(CompositionError, match="at least one recipient"):
        mime.compose(Composition(sender="me@example.com"))


def test_size_limit_checked_before_upload():
    """A message over 36,700,160 bytes raises MessageTooLargeError at composition."""
    big = Attachment("big.bin", b"\0" * (28 * 1024 * 1024), "application/octet-stream")
    with pytest.raises(MessageTooLargeError, match="36700160"):
        mime.compose(Composition(sender="me@example.com", to=["b@example.com"], attachments=[big]))
    mime.check_size(b"x" * mime.MAX_SEND_BYTES)
    with pytest.raises(MessageTooLargeError):
        mime.check_size(b"x" * (mime.MAX_SEND_BYTES + 1))


ORIGINAL = {
    "id": "18f0000000000002",
    "threadId": "18f0000000000001",
    "payload": {
        "headers": [
            {"name": "Subject", "value": "Re: Budget"},
            {"name": "Message-ID", "value": "<m2@mail.example.com>"},
            {"name": "References", "value": "<m1@mail.example.com>"},
            {"name": "From", "value": "Bob <bob@example.com>"},
        ]
    },
}


def test_reply_threads_and_does_not_double_prefix():
    """A reply carries threadId, In-Reply-To, the References chain, one 'Re:' and goes to From."""
    context = ThreadContext.from_message(ORIGINAL)
    out = mime.compose_reply(Composition(sender="me@example.com", text="ok"), context)
    parsed = parse(out.raw)
    assert out.thread_id == "18f0000000000001"
    assert parsed["Subject"] == "Re: Budget"
    assert parsed["In-Reply-To"] == "<m2@mail.example.com>"
    assert parsed["References"] == "<m1@mail.example.com> <m2@mail.example.com>"
    assert parsed["To"].addresses[0].addr_spec == "bob@example.com"


def test_forward_prefix_and_attached_original():
    """A forward gets one 'Fwd:' and the original attached as message/rfc822."""
    context = ThreadContext.from_message(ORIGINAL)
    original = b"From: bob@example.com\r\nSubject: Budget\r\n\r\nnumbers\r\n"
    out = mime.compose_forward(
        Composition(sender="me@example.com", to=["carol@example.com"], subject="Fwd: Budget"),
        context,
        original,
    )
    parsed = parse(out.raw)
    assert parsed["Subject"] == "Fwd: Budget"
    assert out.thread_id == "18f0000000000001"
    attached = [p for p in parsed.walk() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    assert "numbers" in attached[0].get_content().get_content()


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Hi", "Re: Hi"), ("Re: Hi", "Re: Hi"), ("RE: Hi", "RE: Hi"), ("Aw: Hi", "Aw: Hi")],
)
def test_reply_subject(subject, expected):
    """'Re:' is added once, case-insensitively recognised."""
    assert mime.reply_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Hi", "Fwd: Hi"), ("Fwd: Hi", "Fwd: Hi"), ("FW: Hi", "FW: Hi"), ("Re: Hi", "Fwd: Re: Hi")],
)
def test_forward_subject(subject, expected):
    """'Fwd:' is added once; a reply subject is forwarded as 'Fwd: Re: ...'."""
    assert mime.forward_subject(subject) == expected


# Every character str.splitlines() breaks on, besides CR and LF.
OTHER_LINE_BREAKS = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_line_breaks_are_exactly_what_splitlines_breaks_on():
    """mime.LINE_BREAKS holds every code point str.splitlines() splits on, and nothing else."""
    breaking = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert breaking == mime.LINE_BREAKS
    assert set(OTHER_LINE_BREAKS) | {"\r", "\n"} == breaking


@pytest.mark.parametrize("brk", OTHER_LINE_BREAKS)
@pytest.mark.parametrize("field", ["subject", "to", "sender", "extra", "filename", "mime_type"])
def test_every_line_break_is_header_injection(field, brk):
    """VT, FF, FS/GS/RS, NEL, U+2028 and U+2029 in any header value are refused like CR/LF."""
    kwargs: dict[str, Any] = {}
    if field == "subject":
        kwargs["subject"] = f"Hi{brk}there"
    elif field == "to":
        kwargs["to"] = [f"Bob{brk}Smith <bob@example.com>"]
    elif field == "sender":
        kwargs["sender"] = f"Me{brk} <me@example.com>"
    elif field == "extra":
        kwargs["extra_headers"] = {"X-Tag": f"a{brk}b"}
    elif field == "filename":
        kwargs["attachments"] = [Attachment(f"a{brk}b.txt", b"x", "text/plain")]
    else:
        kwargs["attachments"] = [Attachment("a.txt", b"x", f"text/pl{brk}ain")]
    with pytest.raises(mime.HeaderInjectionError, match="line break"):
        mime.compose(to_bob(**kwargs))


@pytest.mark.parametrize("field", ["subject", "to", "text", "html", "filename"])
def test_a_lone_surrogate_is_a_composition_error(field):
    """A lone UTF-16 surrogate (JSON can carry one) cannot be encoded: refused, not a crash."""
    kwargs: dict[str, Any] = {}
    if field == "to":
        kwargs["to"] = ["B\ud800b <bob@example.com>"]
    elif field == "filename":
        kwargs["attachments"] = [Attachment("a\udfff.txt", b"x", "text/plain")]
    else:
        kwargs[field] = "x\ud800y"
    with pytest.raises(CompositionError, match="surrogate"):
        mime.compose(to_bob(**kwargs))
