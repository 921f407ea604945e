"""Organizing mail and mail settings over HTTP (issue #14), on SQLite and PostgreSQL: each route's
happy path, the wrong owner, a human without write rights, a missing scope, bad ids, more than
1,000 ids, the mail-sending limit; every call audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.vocab import Action, Decision, Outcome, Phase
from connector.accounts.scopes import GMAIL_MODIFY, GMAIL_SETTINGS_BASIC
from connector.emulator.server import DEFAULT_SCOPES
from connector.ports import StoredCredentials
from tests.e2e.conftest import ALICE, Stack, first_message

ACC = f"/v1/accounts/{ALICE}"


async def _trail(s: Stack, response: Any) -> list[Any]:
    rid = response.headers["X-Request-ID"]
    return [e for e in await s.events() if e.request_id == rid]


async def _audited_ok(s: Stack, response: Any, action: Action) -> list[Any]:
    """The request's DECISION (allow) and OUTCOME (ok) events for `action`."""
    events = [e for e in await _trail(s, response) if e.action is action]
    phases = [(e.phase, e.decision, e.outcome) for e in events]
    assert (Phase.DECISION, Decision.ALLOW, Outcome.PENDING) in phases, phases
    assert (Phase.OUTCOME, Decision.ALLOW, Outcome.OK) in phases, phases
    return events


def _labels(s: Stack, mid: str) -> set[str]:
    box = s.emu.state.mailbox(s.alice_email)
    assert box is not None
    return set(box.messages[mid].label_ids)


async def _store(s: Stack) -> Any:
    return s.services.accounts.token_source._store  # the preset accounts' credential store


async def _rescope(s: Stack, scopes: frozenset[str]) -> None:
    """Alice's link as if she had granted exactly `scopes` (fresh emulator tokens)."""
    issued = s.emu.issue_tokens(s.alice_email, sorted(scopes))
    (await _store(s)).put(ALICE, StoredCredentials(
        refresh_token=issued["refresh_token"], access_token=issued["access_token"],
        expiry=datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"])), scopes=scopes,
    ))  # fmt: skip


async def test_modify_archive_read_star_and_trash(stack: Stack) -> None:
    """Archive, read and star one message, then trash and untrash it: Gmail changes, each call
    audited with the labels it added and removed."""
    mid = (await first_message(stack))["id"]
    change = {"actions": ["archive", "read", "star"]}
    status, body, resp = await stack.call("POST", f"{ACC}/messages/{mid}/modify", json=change)
    assert status == 200, body
    assert "STARRED" in _labels(stack, mid)
    assert not {"INBOX", "UNREAD"} & _labels(stack, mid)
    events = await _audited_ok(stack, resp, Action.GMAIL_MESSAGE_MODIFY)
    refs = {r.id for r in events[-1].resources}
    assert {mid, "remove:INBOX", "remove:UNREAD", "add:STARRED"} <= refs
    status, _, resp = await stack.call("POST", f"{ACC}/messages/{mid}/trash")
    assert status == 200
    assert "TRASH" in _labels(stack, mid)
    await _audited_ok(stack, resp, Action.GMAIL_MESSAGE_TRASH)
    status, _, resp = await stack.call("POST", f"{ACC}/messages/{mid}/untrash")
    assert status == 200
    assert "TRASH" not in _labels(stack, mid)
    await _audited_ok(stack, resp, Action.GMAIL_MESSAGE_UNTRASH)
    status, body, _ = await stack.call("POST", f"{ACC}/messages/{mid}/modify",
                                       json={"add_label_ids": ["SPAM"]})  # fmt: skip
    assert status == 200
    assert "SPAM" in body["labelIds"]


async def test_threads_list_page_modify_and_trash(stack: Stack) -> None:
    """threads.list pages with the service's sealed token; a thread is starred, trashed and
    restored as a whole, each call audited."""
    status, page, resp = await stack.call("GET", f"{ACC}/threads", params={"max_results": "2"})
    assert status == 200
    assert len(page["threads"]) == 2
    await _audited_ok(stack, resp, Action.GMAIL_THREAD_LIST)
    status, page2, _ = await stack.call("GET", f"{ACC}/threads",
                                        params={"max_results": "2",
                                                "page_token": page["next_page_token"]})  # fmt: skip
    assert status == 200
    assert not {t["id"] for t in page2["threads"]} & {t["id"] for t in page["threads"]}
    status, _, _ = await stack.call("GET", f"{ACC}/threads", params={"page_token": "garbage"})
    assert status == 400
    status, found, _ = await stack.call("GET", f"{ACC}/threads", params={"q": "from:"})
    assert status == 200
    assert found["threads"]
    tid = page["threads"][0]["id"]
    box = stack.emu.state.mailbox(stack.alice_email)
    assert box is not None
    status, _, resp = await stack.call("POST", f"{ACC}/threads/{tid}/modify",
                                       json={"actions": ["star"]})  # fmt: skip
    assert status == 200
    assert all("STARRED" in m.label_ids for m in box.threads[tid])
    await _audited_ok(stack, resp, Action.GMAIL_THREAD_MODIFY)
    status, _, resp = await stack.call("POST", f"{ACC}/threads/{tid}/trash")
    assert status == 200
    assert all("TRASH" in m.label_ids for m in box.threads[tid])
    await _audited_ok(stack, resp, Action.GMAIL_THREAD_TRASH)
    status, _, resp = await stack.call("POST", f"{ACC}/threads/{tid}/untrash")
    assert status == 200
    await _audited_ok(stack, resp, Action.GMAIL_THREAD_UNTRASH)


async def test_labels_list_create_update_delete(stack: Stack) -> None:
    """The owner's labels: listed, created (201), renamed and deleted (204), each audited."""
    status, body, resp = await stack.call("GET", f"{ACC}/labels")
    assert status == 200
    assert "INBOX" in {label["id"] for label in body["labels"]}
    await _audited_ok(stack, resp, Action.GMAIL_LABEL_LIST)
    status, label, resp = await stack.call("POST", f"{ACC}/labels",
                                           json={"name": "Taxes 2026"})  # fmt: skip
    assert status == 201, label
    events = await _audited_ok(stack, resp, Action.GMAIL_LABEL_CREATE)
    assert label["id"] in {r.id for r in events[-1].resources}
    status, renamed, resp = await stack.call("PATCH", f"{ACC}/labels/{label['id']}",
                                             json={"name": "Taxes"})  # fmt: skip
    assert (status, renamed["name"]) == (200, "Taxes")
    await _audited_ok(stack, resp, Action.GMAIL_LABEL_UPDATE)
    status, _, resp = await stack.call("DELETE", f"{ACC}/labels/{label['id']}")
    assert status == 204
    await _audited_ok(stack, resp, Action.GMAIL_LABEL_DELETE)
    status, dup, _ = await stack.call("POST", f"{ACC}/labels", json={"name": "INBOX"})
    assert status == 409, dup
    status, system, _ = await stack.call("PATCH", f"{ACC}/labels/INBOX", json={"name": "Mine"})
    assert status == 422, system


async def test_batch_modify_archives_many_in_one_call(stack: Stack) -> None:
    """batch-modify archives 1,000 messages with one Gmail call; the record names every id."""
    box = stack.emu.state.mailbox(stack.alice_email)
    assert box is not None
    raw = f"From: a@example.com\r\nTo: {stack.alice_email}\r\nSubject: bulk\r\n\r\nx\r\n"
    ids = [box.add_message(raw.encode(), ["INBOX"]).id for _ in range(1000)]
    stack.emu.stats.reset()
    status, body, resp = await stack.call("POST", f"{ACC}/messages/batch-modify",
                                          json={"ids": ids, "actions": ["archive"]})  # fmt: skip
    assert status == 200, body
    assert body["modified"] == 1000
    assert stack.emu.stats.requests["messages.batchModify"] == body["gmail_calls"] == 2
    assert all("INBOX" not in box.messages[i].label_ids for i in ids)
    events = await _audited_ok(stack, resp, Action.GMAIL_MESSAGE_BATCH_MODIFY)
    named = {r.id for e in events if e.phase is Phase.OUTCOME for r in e.resources}
    assert set(ids) <= named


async def test_more_than_1000_ids_are_refused_and_recorded(stack: Stack) -> None:
    """1,001 ids are a 422 before any Gmail call, recorded as a refused request."""
    ids = [f"{i:x}" for i in range(0x10000, 0x10000 + 1001)]
    stack.emu.stats.reset()
    status, body, resp = await stack.call("POST", f"{ACC}/messages/batch-modify",
                                          json={"ids": ids, "actions": ["archive"]})  # fmt: skip
    assert 400 <= status < 500, body
    assert "ids" in str(body)
    assert stack.emu.stats.requests["messages.batchModify"] == 0
    trail = await _trail(stack, resp)
    assert [e.action for e in trail] == [Action.API_REQUEST_REFUSED]


async def test_wrong_owner_is_refused_high_and_gmail_untouched(stack: Stack) -> None:
    """Bob archiving alice's message is refused (actor.not_owner, recorded) and nothing changes."""
    mid = (await first_message(stack))["id"]
    before = _labels(stack, mid)
    for method, path, body in (
        ("POST", f"{ACC}/messages/{mid}/modify", {"actions": ["archive"]}),
        ("POST", f"{ACC}/messages/batch-modify", {"ids": [mid], "actions": ["archive"]}),
        ("POST", f"{ACC}/messages/{mid}/trash", None),
        ("POST", f"{ACC}/labels", {"name": "Bob was here"}),
        ("PUT", f"{ACC}/settings/vacation", {"enable_auto_reply": True}),
    ):
        status, problem, resp = await stack.call(method, path, "bob", json=body)
        assert status == 403, (path, problem)
        trail = await _trail(stack, resp)
        assert trail
        assert all(e.decision is Decision.DENY for e in trail)
        assert any("actor.not_owner" in e.reasons for e in trail)
    assert _labels(stack, mid) == before


async def test_operator_with_a_consent_may_read_but_not_modify(stack: Stack) -> None:
    """An operator alice consented to may read the message but is refused every change."""
    mid = (await first_message(stack))["id"]
    status, consent, _ = await stack.call("POST", f"{ACC}/consents", json={
        "message_ids": [mid], "grantee_id": "op1"})  # fmt: skip
    assert status == 201, consent
    status, _, _ = await stack.call(
        "GET",
        f"/v1/support/accounts/{ALICE}/messages/{mid}",
        "op1",
        params={"consent_id": consent["id"]},
    )
    assert status == 200
    before = _labels(stack, mid)
    for path in (f"{ACC}/messages/{mid}/modify", f"{ACC}/messages/{mid}/trash"):
        status, problem, resp = await stack.call("POST", path, "op1",
                                                 json={"actions": ["archive"]})  # fmt: skip
        assert status == 403, problem
        trail = await _trail(stack, resp)
        assert [e.decision for e in trail] == [Decision.DENY]
        assert "operation.not_permitted" in trail[0].reasons
    assert _labels(stack, mid) == before


async def test_missing_organize_scope_is_a_clear_recorded_refusal(stack: Stack) -> None:
    """Without gmail.modify, organizing answers 403 scope-not-granted with the feature, the
    scope and how to grant it; the decision and the failed outcome are recorded; Gmail is not
    called."""
    creds = await (await _store(stack)).load(ALICE)
    (await _store(stack)).put(ALICE, replace(creds, scopes=creds.scopes - {GMAIL_MODIFY}))
    mid = (await first_message(stack))["id"]
    stack.emu.stats.reset()
    status, problem, resp = await stack.call("POST", f"{ACC}/messages/{mid}/modify",
                                             json={"actions": ["archive"]})  # fmt: skip
    assert status == 403
    assert problem["type"].endswith("/scope-not-granted")
    assert (problem["feature"], problem["scope"]) == ("organize", GMAIL_MODIFY)
    assert problem["grant"]["body"] == {"features": ["organize"]}
    assert stack.emu.stats.requests["messages.modify"] == 0
    outcomes = [e for e in await _trail(stack, resp) if e.phase is Phase.OUTCOME]
    assert [(e.action, e.outcome) for e in outcomes] == [
        (Action.GMAIL_MESSAGE_MODIFY, Outcome.ERROR)
    ]


async def test_settings_are_off_by_default_then_work_once_granted(stack: Stack) -> None:
    """The settings feature is not in a default link (scope-not-granted); with
    gmail.settings.basic, send-as addresses and the vacation responder work and are audited."""
    status, problem, _ = await stack.call("GET", f"{ACC}/settings/vacation")
    assert status == 403
    assert problem["feature"] == "settings"
    await _rescope(stack, frozenset({*DEFAULT_SCOPES, GMAIL_SETTINGS_BASIC}))
    status, send_as, resp = await stack.call("GET", f"{ACC}/settings/send-as")
    assert status == 200
    assert send_as["sendAs"][0]["sendAsEmail"] == stack.alice_email
    await _audited_ok(stack, resp, Action.GMAIL_SEND_AS_LIST)
    status, vacation, resp = await stack.call("PUT", f"{ACC}/settings/vacation", json={
        "enable_auto_reply": True, "response_subject": "Away", "response_body_plain_text": "Back",
        "start_time": "2026-12-24T00:00:00Z", "end_time": "2027-01-02T00:00:00Z",
    })  # fmt: skip
    assert status == 200, vacation
    assert vacation["enableAutoReply"] is True
    await _audited_ok(stack, resp, Action.GMAIL_VACATION_UPDATE)
    status, got, resp = await stack.call("GET", f"{ACC}/settings/vacation")
    assert (status, got) == (200, vacation)
    await _audited_ok(stack, resp, Action.GMAIL_VACATION_READ)


async def test_bad_ids_and_bodies_are_refused_before_gmail(stack: Stack) -> None:
    """Malformed message, thread and label ids are 400 invalid-id; an unknown label change and
    an empty change are 422; none reaches Gmail; a well-formed unknown id is 404 (audited)."""
    stack.emu.stats.reset()
    cases = [
        ("POST", f"{ACC}/messages/NOT-HEX/modify", {"actions": ["read"]}, 400),
        ("POST", f"{ACC}/threads/zz/trash", None, 400),
        ("PATCH", f"{ACC}/labels/bad%20label", {"name": "x"}, 400),
        ("POST", f"{ACC}/messages/batch-modify", {"ids": ["xyz!"], "actions": ["read"]}, 422),
        ("POST", f"{ACC}/messages/abc/modify", {"actions": ["shred"]}, 422),
        ("POST", f"{ACC}/messages/abc/modify", {}, 422),
        ("POST", f"{ACC}/messages/abc/modify", {"add_label_ids": ["A B"]}, 422),
    ]
    for method, path, body, want in cases:
        status, problem, resp = await stack.call(method, path, json=body)
        assert status == want, (path, problem)
        assert await _trail(stack, resp), path  # recorded
    assert sum(stack.emu.stats.requests.values()) == 0
    status, _, resp = await stack.call("POST", f"{ACC}/messages/7fffffffffffffff/trash")
    assert status == 404
    outcomes = [e for e in await _trail(stack, resp) if e.phase is Phase.OUTCOME]
    assert [e.outcome for e in outcomes] == [Outcome.ERROR]


async def test_sending_limit_pauses_sending_with_retry_after(stack: Stack) -> None:
    """Gmail's mail-sending limit answers 429 with Retry-After and the time sending resumes,
    audited as an error; the next send is refused without reaching Gmail; reads go on."""
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    stack.emu.sending.pause(stack.alice_email, until)
    draft = {"to": ["bob@example.com"], "subject": "Hi", "text": "there"}
    stack.emu.stats.reset()
    status, problem, resp = await stack.call("POST", f"{ACC}/messages/send", json=draft)
    assert status == 429, problem
    assert 7190 <= int(resp.headers["Retry-After"]) <= 7200
    assert problem["sending_paused_until"] == until.isoformat().replace("+00:00", "Z")
    sends = [e for e in await _trail(stack, resp) if e.action is Action.GMAIL_MESSAGE_SEND]
    assert [(e.phase, e.outcome) for e in sends] == [
        (Phase.DECISION, Outcome.PENDING), (Phase.OUTCOME, Outcome.ERROR),
    ]  # fmt: skip
    status, _, resp = await stack.call("POST", f"{ACC}/messages/send", json=draft)
    assert status == 429
    assert stack.emu.stats.requests["messages.send"] == 1
    status, _, _ = await stack.call("GET", f"{ACC}/messages")
    assert status == 200
