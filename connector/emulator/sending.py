"""Sending: normalise the sender's headers, store the SENT copy, deliver to emulated users.

Header edits work on bytes (not via `email` re-generation) so bodies stay byte-identical to what
the client sent, as Gmail keeps them.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from connector.emulator import errors
from connector.emulator.mime_parse import decode_header_value
from connector.emulator.state import EmulatorState, Mailbox, Message, now_ms

MAX_RECIPIENTS = 100
SEND_SIZE_LIMIT = 36_700_160  # 35 MB, messages.send and drafts create/update/send
_HEADER_PARSER = BytesHeaderParser()
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv)\s*:\s*)+", re.IGNORECASE)


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (folded continuations kept with their header) and the rest."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(sep)
        if index != -1:
            head, body = raw[:index], raw[index:]
            break
    else:
        head, body = raw, b"\r\n\r\n"
    lines: list[bytes] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\r\n" + line
        elif line:
            lines.append(line)
    return lines, body


def _name(line: bytes) -> bytes:
    return line.split(b":", 1)[0].strip().lower()


def rewrite_headers(
    raw: bytes, drop: set[bytes], prepend: list[bytes], append: list[bytes]
) -> bytes:
    lines, body = _split(raw)
    kept = [line for line in lines if _name(line) not in drop]
    return b"\r\n".join([*prepend, *kept, *append]) + body


def normalise_subject(subject: str) -> str:
    return _SUBJECT_PREFIX.sub("", subject).strip().lower()


def _thread_for_reply(box: Mailbox, references: list[str], subject: str) -> str | None:
    """Find the thread a delivered reply belongs to: referenced id plus matching subject."""
    wanted = normalise_subject(subject)
    for ref in reversed(references):
        found = box.by_rfc822_id.get(ref.lower())
        if found is not None and normalise_subject(found.subject) == wanted:
            return found.thread_id
    return None


def prepare(raw: bytes, sender: str) -> tuple[bytes, list[str], bytes]:
    """Validate and normalise; returns (sender copy bytes, recipients, Bcc-stripped bytes)."""
    if len(raw) > SEND_SIZE_LIMIT:
        raise errors.invalid_argument(
            f"Request payload size exceeds the limit: {SEND_SIZE_LIMIT} bytes."
        )
    headers = _HEADER_PARSER.parsebytes(raw)
    recipients: list[str] = []
    for name in ("to", "cc", "bcc"):
        values = [decode_header_value(str(v)) for v in headers.get_all(name, [])]
        recipients += [addr.lower() for _, addr in getaddresses(values) if "@" in addr]
    if not recipients:
        raise errors.invalid_argument("Recipient address required")
    if len(recipients) > MAX_RECIPIENTS:
        raise errors.invalid_argument("Too many recipients")
    drop = {b"from"}
    prepend: list[bytes] = []
    from_values = [decode_header_value(str(v)) for v in headers.get_all("from", [])]
    from_pairs = getaddresses(from_values)
    # Gmail replaces a From that is not the authenticated user (no send-as aliases here).
    if from_pairs and from_pairs[0][1].lower() == sender:
        drop = set()
    else:
        prepend.append(f"From: {sender}".encode())
    if headers.get("date") is None:
        prepend.append(f"Date: {format_datetime(datetime.now(tz=UTC))}".encode())
    if headers.get("message-id") is None:
        prepend.append(f"Message-Id: <emu-{secrets.token_hex(12)}@mail.gmail.com>".encode())
    sent = rewrite_headers(raw, drop, prepend, []) if drop or prepend else raw
    delivered = rewrite_headers(sent, {b"bcc"}, [], [])
    return sent, list(dict.fromkeys(recipients)), delivered


def send(
    state: EmulatorState,
    box: Mailbox,
    raw: bytes,
    thread_id: str | None,
) -> Message:
    """Commit a send: SENT copy for the sender, INBOX/UNREAD copies for emulated recipients."""
    sent_bytes, recipients, delivered = prepare(raw, box.email)
    sender_thread: str | None = None
    if thread_id:
        if thread_id not in box.threads:
            raise errors.not_found()
        headers = _HEADER_PARSER.parsebytes(sent_bytes)
        subject = decode_header_value(str(headers.get("subject", "")))
        first = box.threads[thread_id][0]
        # Gmail threads a sent message only with all three: the threadId, In-Reply-To and
        # References headers, and a subject matching the thread's; otherwise a new thread.
        replies = bool(headers.get("in-reply-to")) and bool(headers.get("references"))
        if replies and normalise_subject(subject) == normalise_subject(first.subject):
            sender_thread = thread_id
    date = now_ms()
    labels = ["SENT"]
    if box.email in recipients:
        labels += ["INBOX", "UNREAD"]
    sent = box.add_message(sent_bytes, labels, thread_id=sender_thread, internal_date=date)
    references = _references(sent)
    for address in recipients:
        target = state.mailbox(address)
        if target is None or target is box:
            continue
        copy = rewrite_headers(delivered, set(), [f"Delivered-To: {address}".encode()], [])
        tid = _thread_for_reply(target, references, sent.subject)
        target.add_message(
            copy, ["UNREAD", "CATEGORY_PERSONAL", "INBOX"], thread_id=tid, internal_date=date
        )
    return sent


def _references(msg: Message) -> list[str]:
    ids = re.findall(r"<[^>]+>", msg.parsed.header("References"))
    ids += re.findall(r"<[^>]+>", msg.parsed.header("In-Reply-To"))
    return ids
