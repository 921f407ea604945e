"""The caller's faults are the caller's: malformed inputs answer a problem+json 4xx, never a 500
and never aiohttp's plain-text errors, and nothing is sent."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from connector.emulator.server import EmulatorConfig, run_emulator
from connector.web.app import create_app
from connector.web.server import ServiceRunner
from connector.wiring import preset_accounts
from tests.e2e.conftest import ALICE, PROBLEM, Stack, assert_problem, make_settings

SEND = f"/v1/accounts/{ALICE}/messages/send"
DRAFTS = f"/v1/accounts/{ALICE}/drafts"
LINE_BREAKS = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


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


CONSENTS = f"/v1/accounts/{ALICE}/consents"


@pytest.mark.parametrize("path", [SEND, DRAFTS, CONSENTS, "/v1/access-requests"])
async def test_deeply_nested_json_is_400(stack: Stack, path: str) -> None:
    """A body nested 100,000 deep (RecursionError in the parser) is a 400 malformed-request."""
    who = "op1" if path.startswith("/v1/access") else "alice"
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"to":' + b"[" * 50 + b"]" * 50 + b"}"):
        status, body, resp = await stack.call(
            "POST", path, who, data=deep, headers={"Content-Type": "application/json"}
        )
        assert_problem(status, body, resp, 400, "malformed-request")
        assert "nest" in body["detail"]


@pytest.mark.parametrize(
    ("path", "raw"),
    [(SEND, b'{"to":["a@example.org"],"subject":"\\ud800"}'),
     (CONSENTS, b'{"message_ids":["1"],"grantee_id":"op\\udfff"}')],
)  # fmt: skip
async def test_a_lone_surrogate_in_a_json_body_is_400(stack: Stack, path: str, raw: bytes) -> None:
    """A \\ud800 escape (a string no UTF-8 can hold) is a malformed body, not a 500 downstream."""
    status, body, resp = await stack.call(
        "POST", path, data=raw, headers={"Content-Type": "application/json"}
    )
    assert_problem(status, body, resp, 400, "malformed-request")
    assert "surrogate" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [{"X-Big": "a" * 9000}, {f"X-H{i}": "v" for i in range(200)}, {"X-" + "n" * 9000: "v"}],
)
async def test_oversized_request_headers_are_431_problems(
    stack: Stack, headers: dict[str, str]
) -> None:
    """A header line over 8190 bytes or over 128 headers: 431 problem+json, not plain text."""
    status, body, resp = await stack.call("GET", f"/v1/accounts/{ALICE}/messages", headers=headers)
    assert_problem(status, body, resp, 431, "request-headers-too-large")


async def test_a_malformed_request_line_is_a_400_problem(stack: Stack) -> None:
    """Garbage where HTTP was expected: aiohttp's parser error becomes a problem+json 400."""
    host, port = stack.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"G@RBAGE / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", answer
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(payload)["type"].endswith("/malformed-request")


@pytest.mark.parametrize("path", [f"/v1/accounts/{ALICE}/messages", DRAFTS])
async def test_a_garbage_page_token_is_400_and_costs_no_gmail_call(stack: Stack, path: str) -> None:
    """A page_token this service never issued is the caller's fault (400), not gmail-rejected."""
    for token in ("garbage", "12345678901234567890", "x" * 200):
        status, body, resp = await stack.call("GET", path, params={"page_token": token})
        assert_problem(status, body, resp, 400, "invalid-page-token")


async def test_a_slow_header_client_is_cut_off(tmp_path: Path) -> None:
    """A client trickling its request head is disconnected after CONNECTOR_HEADER_TIMEOUT_SECONDS,
    while a prompt request on another connection is answered."""
    async with run_emulator(EmulatorConfig(seed="e2e", users=1, messages_per_user=1)) as emu:
        settings = make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}",
                                 f"sqlite:///{tmp_path / 'audit.db'}", emu,
                                 header_timeout_seconds=1)  # fmt: skip
        runner = ServiceRunner(create_app(settings, accounts=preset_accounts({})), settings)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for _ in range(40):  # one header byte every 0.1 s, never the blank line
                try:
                    writer.write(b"X")
                    await writer.drain()
                except ConnectionError:
                    closed = True
                    break
                if reader.at_eof() or (await _peek_eof(reader)):
                    closed = True
                    break
            elapsed = time.monotonic() - started
            writer.close()
            assert closed
            assert elapsed < 3
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as prompt,
            ):
                assert prompt.status == 200
        finally:
            await runner.cleanup()


async def _peek_eof(reader: asyncio.StreamReader) -> bool:
    """True when the server closed the connection within 0.1 s."""
    try:
        data = await asyncio.wait_for(reader.read(1), 0.1)
    except TimeoutError:
        return False
    return data == b""


async def test_issued_page_tokens_page_and_are_bound_to_their_list(stack: Stack) -> None:
    """The token a page hands out fetches the next page; on another list or edited it is 400."""
    path = f"/v1/accounts/{ALICE}/messages"
    status, first, _ = await stack.call("GET", path, params={"max_results": "5"})
    assert status == 200
    token = first["next_page_token"]
    status, second, _ = await stack.call("GET", path, params={"max_results": "5",
                                                              "page_token": token})  # fmt: skip
    assert status == 200
    assert {m["id"] for m in first["messages"]}.isdisjoint(m["id"] for m in second["messages"])
    edited = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for other_path, value in ((DRAFTS, token), (path, edited)):
        status, body, resp = await stack.call("GET", other_path, params={"page_token": value})
        assert_problem(status, body, resp, 400, "invalid-page-token")


async def test_an_attachment_id_gmail_calls_invalid_is_404(stack: Stack) -> None:
    """An attachment id of the right form that is not the message's: 404, not 502."""
    status, page, _ = await stack.call("GET", f"/v1/accounts/{ALICE}/messages",
                                       params={"max_results": "1", "format": "ids"})  # fmt: skip
    message = page["messages"][0]["id"]
    for who, prefix in (("alice", "/v1/accounts"), ("op1", "/v1/support/accounts")):
        path = f"{prefix}/{ALICE}/messages/{message}/attachments/njzPMuD1=="
        status, body, resp = await stack.call("GET", path, who)
        assert status in (403, 404), body  # the operator has no basis: refused before Gmail
        assert resp.content_type == PROBLEM
    status, body, resp = await stack.call(
        "GET", f"/v1/accounts/{ALICE}/messages/{message}/attachments/njzPMuD1=="
    )
    assert_problem(status, body, resp, 404, "not-found")


@pytest.mark.parametrize("gmail_id", ["8000000000000000", "8eaa54fd25a4e2a0", "ffffffffffffffff"])
async def test_a_gmail_id_past_2_63_is_an_invalid_id(stack: Stack, gmail_id: str) -> None:
    """Gmail ids are hex below 2^63: a 16-digit id from 8000... up is 400 invalid-id, not 502."""
    for path in (f"/v1/accounts/{ALICE}/messages/{gmail_id}",
                 f"/v1/accounts/{ALICE}/threads/{gmail_id}"):  # fmt: skip
        status, body, resp = await stack.call("GET", path)
        assert_problem(status, body, resp, 400, "invalid-id")
    status, body, resp = await stack.call("POST", SEND, json={"to": ["a@example.org"],
                                                              "reply_to": gmail_id})  # fmt: skip
    assert_problem(status, body, resp, 400, "invalid-id")
