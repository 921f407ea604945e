"""The caller's faults are the caller's: malformed inputs answer a problem+json 4xx, never a 500
and never aiohttp's plain-text errors, and nothing is sent."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ALICE, Stack

SEND = f"/v1/accounts/{ALICE}/messages/send"
DRAFTS = f"/v1/accounts/{ALICE}/drafts"
PROBLEM = "application/problem+json"
LINE_BREAKS = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def assert_problem(status: int, body: object, resp: object, expected: int, slug: str) -> None:
    assert status == expected, body
    assert resp.content_type == PROBLEM  # type: ignore[attr-defined]
    assert isinstance(body, dict)
    assert body["type"] == f"https://connector.dev/problems/{slug}"
    assert body["status"] == expected


@pytest.mark.parametrize("brk", LINE_BREAKS)
async def test_other_line_breaks_in_headers_are_header_injection(stack: Stack, brk: str) -> None:
    """VT, FF, FS/GS/RS, NEL, U+2028, U+2029 in subject, address or filename: 400, nothing sent."""
    sent_before = len(stack.emu.state.mailbox(stack.alice_email).messages)
    bodies = [
        {"to": ["a@example.org"], "subject": f"hi{brk}Bcc: evil@example.org"},
        {"to": [f"A{brk}B <a@example.org>"], "subject": "hi"},
        {"to": ["a@example.org"], "attachments": [
            {"filename": f"a{brk}.txt", "mime_type": "text/plain", "content_base64": "eA=="}]},
        {"to": ["a@example.org"], "attachments": [
            {"filename": "a.txt", "mime_type": f"text/pl{brk}ain", "content_base64": "eA=="}]},
    ]  # fmt: skip
    for body in bodies:
        for path in (SEND, DRAFTS):
            status, answer, resp = await stack.call("POST", path, json=body)
            assert_problem(status, answer, resp, 400, "header-injection")
    assert len(stack.emu.state.mailbox(stack.alice_email).messages) == sent_before
