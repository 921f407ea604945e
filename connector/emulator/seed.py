"""Deterministic mailbox generator: the same seed always yields the same mailboxes.

Messages are assembled from byte templates rather than `email.message` objects because seeding
3,000+ messages must take well under two seconds; the bytes are still valid RFC 822/MIME, and the
emulator parses them like any sent message.
"""

from __future__ import annotations

import base64
import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr

from connector.emulator.state import EmulatorState, Mailbox

USER_NAMES = [
    ("alice", "Alice Andersson"),
    ("bob", "Bob Builder"),
    ("carol", "Carol Çelik"),
    ("dave", "Dave Dubois"),
    ("erin", "Erin O'Brien"),
    ("frank", "Frank Fischer"),
    ("grace", "Grace Hopper"),
    ("heidi", "Heidi Hämäläinen"),
    ("ivan", "Ivan Ivanović"),
    ("judy", "Judy Jones"),
]
CONTACTS = [
    ("Zoë Åström", "zoe@example.org"),
    ("José Núñez", "jose.nunez@example.net"),
    ("李雷", "li.lei@example.cn"),
    ("Müller GmbH Billing", "billing@mueller.example.de"),
    ("Priya Raman", "priya@example.in"),
    ("Newsletter", "news@updates.example.com"),
    ("Kwame Mensah", "kwame@example.com.gh"),
    ("Søren Kierkegaard", "soren@example.dk"),
]
SUBJECTS = [
    "Project kickoff",
    "Lunch on Friday?",
    "Invoice #{n}",
    "Café meeting — Überblick",
    "Quarterly report draft",
    "Travel plans to Zürich",
    "Re: your question about the API",
    "Photos from the weekend",
    "会议安排 (meeting schedule)",
    "Contract renewal",
    "Welcome to the team!",
    "Build failed on main",
]
LINES = [
    "Hi {name},",
    "Thanks for the update — looks good to me.",
    "Could we move the meeting to Thursday at 10:00?",
    "I've attached the latest version for review.",
    "Let me know what you think when you get a chance.",
    "The numbers for Q{q} are in; revenue is up {pct}%.",
    "Grüße aus Berlin! Das Wetter ist schön.",
    "Reminder: the deadline is next Monday.",
    "Cheers,",
]
USER_LABELS = ["Projects", "Receipts", "Travel", "Family/Photos"]
ATTACHMENTS = [
    (
        "report.pdf",
        "application/pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    ),
    ("notes.txt", "text/plain", "Meeting notes — action items: ship it.\n".encode()),
    ("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(64))),
    ("Übersicht.csv", "text/csv", "name,amount\nZoë,12.50\n".encode()),
]
# Seeded mail lies before this instant so anything sent while running is newer.
SEED_EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def user_emails(count: int) -> list[str]:
    names = [f"{login}@example.com" for login, _ in USER_NAMES]
    names += [f"user{i}@example.com" for i in range(len(names) + 1, count + 1)]
    return names[:count]


def display_name(email: str) -> str:
    login = email.split("@", 1)[0]
    for name, full in USER_NAMES:
        if name == login:
            return full
    return login.capitalize()


@functools.lru_cache(maxsize=512)
def _addr(name: str, email: str) -> str:
    if name.isascii():
        return formataddr((name, email))
    return f"{Header(name, 'utf-8').encode()} <{email}>"


@functools.lru_cache(maxsize=512)
def _subject_header(subject: str) -> str:
    return subject if subject.isascii() else Header(subject, "utf-8").encode()


def _b64_lines(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii")


@dataclass
class _Ctx:
    rng: random.Random
    boundary_seq: int = 0

    def boundary(self, kind: str) -> str:
        # Fixed per nesting kind: unique within a message is all MIME needs, and the stdlib
        # parser compiles a regex per distinct boundary, so varying them costs seconds.
        return f"==emu_{kind}_boundary=="


def _body_text(ctx: _Ctx, recipient_name: str) -> str:
    rng = ctx.rng
    lines = [LINES[0].format(name=recipient_name.split(maxsplit=1)[0])]
    for line in rng.sample(LINES[1:-1], k=rng.randint(1, 3)):
        lines.append(line.format(q=rng.randint(1, 4), pct=rng.randint(2, 40)))
    lines.append(LINES[-1])
    return "\r\n".join(lines) + "\r\n"


def build_raw(
    ctx: _Ctx,
    *,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    subject: str,
    date: datetime,
    message_id: str,
    in_reply_to: str | None,
    text: str,
    html: bool,
    attachment: tuple[str, str, bytes] | None,
) -> bytes:
    head = [
        "MIME-Version: 1.0",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        f"Subject: {_subject_header(subject)}",
        f"From: {_addr(*sender)}",
        f"To: {_addr(*recipient)}",
    ]
    if in_reply_to:
        head += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    text_part = (
        'Content-Type: text/plain; charset="UTF-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + _b64_lines(text.encode())
    )
    body = text_part
    if html:
        markup = '<div dir="ltr">' + "<br>".join(text.splitlines()) + "</div>"
        alt = ctx.boundary("alt")
        body = (
            f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
            f"--{alt}\r\n{text_part}\r\n--{alt}\r\n"
            'Content-Type: text/html; charset="UTF-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + _b64_lines(markup.encode())
            + f"\r\n--{alt}--\r\n"
        )
    if attachment:
        filename, ctype, data = attachment
        mixed = ctx.boundary("mixed")
        fname = filename if filename.isascii() else Header(filename, "utf-8").encode()
        body = (
            f'Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
            f"--{mixed}\r\n{body}\r\n--{mixed}\r\n"
            f'Content-Type: {ctype}; name="{fname}"\r\n'
            f'Content-Disposition: attachment; filename="{fname}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + _b64_lines(data) + f"\r\n--{mixed}--\r\n"
        )
    return ("\r\n".join(head) + "\r\n" + body).replace("\r\n", "\n").replace("\n", "\r\n").encode()


def seed_mailbox(box: Mailbox, rng: random.Random, count: int, others: list[str]) -> None:
    """Fill `box` with `count` messages in threads of 1 to 4; same rng state, same mail."""
    ctx = _Ctx(rng)
    me = (display_name(box.email), box.email)
    label_ids = [box.create_label(name).id for name in USER_LABELS]
    contacts = [*CONTACTS, *((display_name(o), o) for o in others if o != box.email)]
    # Spread messages over the past, roughly 3 hours apart, oldest first.
    moment = SEED_EPOCH.timestamp() - count * 6 * 3600 - 3600
    made = 0
    thread_no = 0
    while made < count:
        thread_no += 1
        peer = contacts[rng.randrange(len(contacts))]
        subject = rng.choice(SUBJECTS).replace("{n}", str(1000 + thread_no))
        length = min(rng.choice((1, 1, 1, 2, 2, 3, 4)), count - made)
        inbound = rng.random() < 0.75
        thread_id: str | None = None
        previous: str | None = None
        user_label = label_ids[rng.randrange(len(label_ids))] if rng.random() < 0.2 else None
        for position in range(length):
            moment += rng.randint(600, 6 * 3600)
            date = datetime.fromtimestamp(moment, tz=UTC)
            sender, recipient = (peer, me) if inbound else (me, peer)
            login = box.email.split("@")[0]
            msg_id = (
                f"<emu.{login}.{thread_no}.{position}.{rng.getrandbits(40):x}@mail.example.com>"
            )
            attachment = (
                ATTACHMENTS[rng.randrange(len(ATTACHMENTS))] if rng.random() < 0.15 else None
            )
            raw = build_raw(
                ctx,
                sender=sender,
                recipient=recipient,
                subject=subject if position == 0 else f"Re: {subject}",
                date=date,
                message_id=msg_id,
                in_reply_to=previous,
                text=_body_text(ctx, recipient[0]),
                html=rng.random() < 0.5,
                attachment=attachment,
            )
            labels = ["INBOX", "CATEGORY_PERSONAL"] if inbound else ["SENT"]
            if inbound and rng.random() < 0.35:
                labels.insert(0, "UNREAD")
            if inbound and rng.random() < 0.2:
                labels.append("IMPORTANT")
            if rng.random() < 0.05:
                labels.append("STARRED")
            if user_label:
                labels.append(user_label)
            msg = box.add_message(
                raw,
                labels,
                thread_id=thread_id,
                internal_date=int(moment * 1000),
                rfc822_id=msg_id,
            )
            thread_id = msg.thread_id
            previous = msg_id
            inbound = not inbound
            made += 1
    # No seal: Gmail keeps about a week of history, so a historyId read from a seeded message
    # is a valid startHistoryId whose records list the seeded messages that came after it.


def seed_state(seed: str | int, users: int, messages_per_user: int) -> EmulatorState:
    """Build a fresh state: `users` mailboxes of `messages_per_user` messages each."""
    state = EmulatorState()
    emails = user_emails(users)
    for index, email in enumerate(emails):
        rng = random.Random(f"{seed}:{index}:{email}")  # noqa: S311 - reproducible test data
        box = state.add_user(email, history_start=1000 + rng.randint(0, 50_000))
        seed_mailbox(box, rng, messages_per_user, emails)
    return state
