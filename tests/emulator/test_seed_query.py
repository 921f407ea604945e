"""Deterministic seeding and the Gmail search parser."""

from __future__ import annotations

import time

import pytest

from connector.emulator.errors import GmailError
from connector.emulator.query import parse_query
from connector.emulator.seed import seed_state
from connector.emulator.state import EmulatorState, Mailbox, parse_id


def fingerprint(state: EmulatorState) -> list[tuple[str, str, bytes, tuple[str, ...]]]:
    return [
        (m.id, m.thread_id, m.raw, tuple(m.label_ids))
        for box in state.mailboxes.values()
        for m in box.order
    ]


def test_same_seed_same_mailboxes() -> None:
    """The same seed yields byte-identical mailboxes; a different seed does not."""
    a, b, c = seed_state("x", 2, 40), seed_state("x", 2, 40), seed_state("y", 2, 40)
    assert [r[2:] for r in fingerprint(a)] == [r[2:] for r in fingerprint(b)]
    assert [r[2] for r in fingerprint(a)] != [r[2] for r in fingerprint(c)]
    assert a.users == ["alice@example.com", "bob@example.com"]


def test_demo_seed_is_realistic() -> None:
    """The demo set has threads with replies, HTML, attachments, unread, user labels, non-ASCII."""
    box = seed_state("demo", 3, 60).mailboxes["alice@example.com"]
    messages = list(box.messages.values())
    assert any(len(t) > 1 for t in box.threads.values())
    assert any(m.parsed.has_attachment for m in messages)
    assert any(
        m.parsed.payload["mimeType"] == "multipart/alternative"
        or any(
            p.get("mimeType") == "multipart/alternative" for p in m.parsed.payload.get("parts", [])
        )
        for m in messages
    )
    assert any("UNREAD" in m.label_ids for m in messages)
    assert any(lbl.startswith("Label_") for m in messages for lbl in m.label_ids)
    assert any(not m.parsed.header("From").isascii() or not m.subject.isascii() for m in messages)
    for thread_id, thread in box.threads.items():
        assert thread[0].id == thread_id


def test_large_mailbox_is_fast() -> None:
    """3,000 messages for one user seed in well under two seconds."""
    started = time.perf_counter()
    state = seed_state("bench", 1, 3000)
    assert time.perf_counter() - started < 2.0
    assert len(state.mailboxes["alice@example.com"].messages) == 3000


def test_parse_id_rules() -> None:
    """Ids are ≤16 hex digits below 2^63."""
    assert parse_id("7fffffffffffffff") == 2**63 - 1
    assert parse_id("ffffffffffffffff") is None
    assert parse_id("nosuchmessageid") is None
    assert parse_id("abc123") == 0xABC123


@pytest.fixture(scope="module")
def box() -> Mailbox:
    return seed_state("demo", 3, 80).mailboxes["alice@example.com"]


def ids(box: Mailbox, q: str) -> set[str]:
    query = parse_query(q)
    return {m.id for m in box.order if query.matches(m, box)}


def test_query_operators(box: Mailbox) -> None:
    """from/to/subject/negation/OR/braces/after/before/larger select what they say."""
    every = {m.id for m in box.order}
    frm = ids(box, "from:zoe@example.org")
    assert frm
    assert all("zoe@example.org" in box.messages[i].parsed.header("From") for i in frm)
    assert ids(box, "-from:zoe@example.org") == every - frm
    to = ids(box, "to:alice@example.com")
    assert ids(box, "from:zoe@example.org OR to:alice@example.com") == frm | to
    assert ids(box, "{from:zoe@example.org to:alice@example.com}") == frm | to
    inv = ids(box, 'subject:"invoice"')
    assert all("invoice" in box.messages[i].subject.lower() for i in inv)
    dates = sorted(m.internal_date for m in box.order)
    middle = dates[len(dates) // 2] // 1000
    after = ids(box, f"after:{middle}")
    assert after == {m.id for m in box.order if m.internal_date >= middle * 1000}
    assert ids(box, f"before:{middle}") == every - after
    assert ids(box, "after:2000/01/01") == every
    assert ids(box, "before:2000/01/01") == set()
    assert ids(box, "label:projects") == {
        m.id for m in box.order if any(box.labels[x].name == "Projects" for x in m.label_ids)
    }
    assert ids(box, "larger:1") == every
    assert ids(box, "smaller:1") == set()
    assert ids(box, "") == every


def test_query_free_text_and_bad_dates(box: Mailbox) -> None:
    """Free text searches bodies and headers; a malformed date is 400."""
    assert ids(box, "Berlin") == {m.id for m in box.order if "berlin" in m.parsed.text}
    with pytest.raises(GmailError):
        parse_query("after:2020/13/45")


def test_snippet_escaping_like_gmail() -> None:
    """Snippets are HTML-escaped with Gmail's entities (&#39; for an apostrophe)."""
    from connector.emulator.mime_parse import parse_message

    parsed = parse_message(b"Subject: s\r\n\r\nI've got <b> & more", "k")
    assert parsed.snippet == "I&#39;ve got &lt;b&gt; &amp; more"
