"""The owner's change feed over HTTP: pages after a cursor, bad cursors, other users refused and
audited, the SSE stream (woken on commit, resumed with Last-Event-ID), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import json
import re
from typing import Any

import aiohttp

from audit.vocab import Action, Decision
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.models import ChangeRow
from connector.accounts.sync_store import append_rows
from connector.db import session_factory
from connector.web.app import ENGINE
from tests.e2e.conftest import ALICE, PROBLEM, Stack

FEED = f"/v1/accounts/{ALICE}/changes"


async def _append(s: Stack, *changes: Change) -> list[int]:
    """Feed rows for the preset account (no accounts row to sync into), then wake streams."""
    async with session_factory(s.app[ENGINE])() as session, session.begin():
        rows: list[ChangeRow] = append_rows(session, ALICE, changes, s.services.clock())
        await session.flush()
        seqs = [r.seq for r in rows if r.seq is not None]
    s.services.feed.store.signal.notify(ALICE)
    return seqs


def _added(n: int) -> list[Change]:
    return [Change(ChangeKind.MESSAGE_ADDED, str(100 + i), f"m{i}", f"t{i}") for i in range(n)]


async def test_pages_in_order_after_the_cursor(stack: Stack) -> None:
    seqs = await _append(stack, *_added(5))
    status, body, resp = await stack.call("GET", FEED, params={"limit": "2"})
    assert status == 200, body
    assert resp.headers["Cache-Control"] == "no-store"
    assert [c["seq"] for c in body["changes"]] == seqs[:2]
    assert body["changes"][0] == {
        **body["changes"][0],
        "kind": "message_added",
        "messageId": "m0",
        "threadId": "t0",
        "historyId": "100",
    }
    seen: list[int] = []
    cursor = "0"
    while True:
        status, body, _ = await stack.call("GET", FEED, params={"cursor": cursor, "limit": "2"})
        assert status == 200
        if not body["changes"]:
            assert body["nextCursor"] == int(cursor)  # nothing new: the same cursor again
            break
        seen += [c["seq"] for c in body["changes"]]
        cursor = str(body["nextCursor"])
    assert seen == seqs
    reads = await stack.events(action=Action.ACCOUNT_CHANGES_READ, decision=Decision.ALLOW)
    assert len(reads) == 5  # one per page, the owner, USER_FEATURE
    assert {(e.actor.id, e.account_id, e.purpose.value) for e in reads} == {
        ("alice", ALICE, "user_feature")
    }


async def test_bad_cursor_and_limit_are_problems(stack: Stack) -> None:
    for params in ({"cursor": "-1"}, {"cursor": "abc"}, {"cursor": "01"}, {"limit": "0"},
                   {"limit": "501"}, {"limit": "x"}, {"cursor": "9" * 40}):  # fmt: skip
        status, body, resp = await stack.call("GET", FEED, params=params)
        assert status == 422, params
        assert resp.content_type == PROBLEM
        assert body["errors"][0]["field"] in params
    status, _, resp = await stack.call("GET", f"{FEED}/stream", headers={"Last-Event-ID": "x"})
    assert status == 422
    assert resp.content_type == PROBLEM


async def test_other_user_is_refused_and_audited(stack: Stack) -> None:
    await _append(stack, *_added(1))
    for path in (FEED, f"{FEED}/stream"):
        status, body, _ = await stack.call("GET", path, "bob")
        assert status == 403, body
    refused = await stack.events(actor_id="bob", decision=Decision.DENY)
    assert [e.action for e in refused] == [
        Action.ACCOUNT_CHANGES_READ,
        Action.ACCOUNT_CHANGES_STREAMED,
    ]
    assert all("actor.not_owner" in e.reasons and e.account_id == ALICE for e in refused)
    status, _, _ = await stack.call("GET", FEED, "op1")  # no role but the owner's may ask
    assert status == 403


async def _events(resp: aiohttp.ClientResponse, n: int) -> list[dict[str, Any]]:
    """The next `n` SSE events (fields of each), skipping comments and the retry line."""
    found: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    async with asyncio.timeout(10):
        while len(found) < n:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    found.append(fields)
                fields = {}
                continue
            name, _, value = line.partition(": ")
            if name:
                fields[name] = value
    return found


async def test_stream_is_woken_and_resumes_with_last_event_id(stack: Stack) -> None:
    first = await _append(stack, *_added(2))
    url = stack.base + f"{FEED}/stream"
    auth = {"Authorization": f"Bearer {stack.token('alice')}"}
    async with stack.http.get(url, headers=auth) as resp:  # no cursor: from now on
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert (await resp.content.readline()).startswith(b"retry: ")
        later = await _append(stack, *_added(3)[2:])
        [event] = await _events(resp, 1)
        assert event["id"] == str(later[0])
        assert event["event"] == "change"
        assert json.loads(event["data"])["messageId"] == "m2"
    resumed = {**auth, "Last-Event-ID": str(first[0])}  # as EventSource reconnects
    async with stack.http.get(url, headers=resumed, params={"cursor": "0"}) as resp:
        got = await _events(resp, 2)
        assert [int(e["id"]) for e in got] == [first[1], later[0]]
    opened = await stack.events(action=Action.ACCOUNT_CHANGES_STREAMED, decision=Decision.ALLOW)
    assert len(opened) == 2  # one record per stream opened


async def test_stream_sends_heartbeats_and_ends_at_shutdown(stack: Stack) -> None:
    stack.services.feed.heartbeat_seconds = 0.2
    stack.services.feed.poll_seconds = 0.1
    url = stack.base + f"{FEED}/stream"
    auth = {"Authorization": f"Bearer {stack.token('alice')}"}
    async with stack.http.get(url, headers=auth) as resp:
        async with asyncio.timeout(5):
            lines = [await resp.content.readline() for _ in range(4)]
        assert b": heartbeat\n" in lines
        stack.services.feed.close()  # what the app's on_shutdown does
        async with asyncio.timeout(5):
            rest = await resp.content.read()  # the stream ends: no hang until a timeout
        assert b"event: change" not in rest


async def test_stream_closes_after_its_lifetime(stack: Stack) -> None:
    stack.services.feed.lifetime_seconds = 0.3
    url = stack.base + f"{FEED}/stream"
    auth = {"Authorization": f"Bearer {stack.token('alice')}"}
    async with stack.http.get(url, headers=auth) as resp:
        async with asyncio.timeout(5):
            body = await resp.content.read()  # ends by itself; EventSource would reconnect
    assert body.startswith(b"retry: ")


async def test_inbox_page_streams_changes_made_after_it_was_rendered(stack: Stack) -> None:
    """Mail that lands between the inbox page's render and its EventSource connecting is not
    lost: the page names the feed position it was rendered at and the stream starts there
    (it started at the feed's end when it connected: the live-inbox browser test's flake)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        signin = f"{stack.base}/app/signin"
        token = {"token": stack.token("alice")}
        async with browser.get(signin, params=token, allow_redirects=False) as resp:
            assert resp.status == 303
        await _append(stack, *_added(2))  # history before the page: not replayed
        async with browser.get(f"{stack.base}/app/accounts/{ALICE}/inbox") as resp:
            assert resp.status == 200, await resp.text()
            events_url = re.search(r'data-events="([^"]+)"', await resp.text())
        assert events_url is not None
        [seq] = await _append(stack, *_added(1))  # arrives before the stream is open
        async with browser.get(stack.base + html.unescape(events_url.group(1))) as resp:
            assert resp.status == 200
            [event] = await _events(resp, 1)
    assert event["id"] == str(seq)


async def test_web_client_session_streams_the_same_feed(stack: Stack) -> None:
    """The browser's route: the session cookie instead of a bearer header, the same permit."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        signin = f"{stack.base}/app/signin"
        token = {"token": stack.token("alice")}
        async with browser.get(signin, params=token, allow_redirects=False) as resp:
            assert resp.status == 303  # signed in: the session cookie is set
        url = f"{stack.base}/app/accounts/{ALICE}/events"
        async with browser.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert (await resp.content.readline()).startswith(b"retry: ")
            [seq] = await _append(stack, *_added(1))
            [event] = await _events(resp, 1)
            assert event["id"] == str(seq)
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url) as resp:
        assert resp.status == 401  # no session, no stream
    opened = await stack.events(action=Action.ACCOUNT_CHANGES_STREAMED, decision=Decision.ALLOW)
    assert [e.actor.id for e in opened] == ["alice"]
