"""Gmail v1 REST behaviour over loopback: shapes, operations and error envelopes."""

from __future__ import annotations

import base64
import io
import json
from email.message import EmailMessage
from pathlib import Path

from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, BOB, CAROL, GMAIL, Api

FIXTURES = Path("/work/shared/fixtures/gmail")
ENVELOPES = {
    case["name"]: case
    for case in json.loads((FIXTURES / "gmail_error_envelopes.json").read_text())["cases"]
}


def envelope(prefix: str) -> dict:
    return next(c["body"] for name, c in ENVELOPES.items() if name.startswith(prefix))


def raw_message(
    to: str = BOB, subject: str = "Hello", body: str = "Hi there", **headers: str
) -> str:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return base64.urlsafe_b64encode(msg.as_bytes()).decode()


async def test_get_profile_shape(api: Api) -> None:
    """getProfile returns the address, integer totals and a string historyId."""
    status, body = await api.get("profile")
    assert status == 200
    assert body["emailAddress"] == ALICE
    assert isinstance(body["messagesTotal"], int)
    assert body["messagesTotal"] == 20
    assert isinstance(body["threadsTotal"], int)
    assert isinstance(body["historyId"], str)


async def test_user_id_may_be_the_email_but_not_someone_else(api: Api, emu: Emulator) -> None:
    """userId accepts 'me' or the token's own address; another user's address is denied."""
    status, _ = await api.get("", raw_url=f"{emu.base_url}gmail/v1/users/{ALICE}/profile")
    assert status == 200
    status, body = await api.get("", raw_url=f"{emu.base_url}gmail/v1/users/{BOB}/profile")
    assert status == 403
    assert body["error"]["status"] == "PERMISSION_DENIED"


async def test_labels_list_get_create(api: Api) -> None:
    """labels.list has system and user labels; get adds counts; create rejects duplicates."""
    status, body = await api.get("labels")
    ids = {label["id"] for label in body["labels"]}
    assert status == 200
    assert {"INBOX", "SENT", "DRAFT", "UNREAD"} <= ids
    status, inbox = await api.get("labels/INBOX")
    assert status == 200
    assert inbox["type"] == "system"
    assert isinstance(inbox["messagesTotal"], int)
    assert isinstance(inbox["threadsUnread"], int)
    status, created = await api.post("labels", json={"name": "Émigré"})
    assert status == 200
    assert created["id"].startswith("Label_")
    assert created["type"] == "user"
    status, dup = await api.post("labels", json={"name": "émigré"})
    assert status == 409
    assert dup["error"]["code"] == 409
    status, body = await api.get("labels/NO_SUCH")
    assert (status, body) == (404, envelope("labels.get unknown"))


async def test_messages_list_newest_first_and_paginates(api: Api, emu: Emulator) -> None:
    """messages.list returns id/threadId stubs, newest first, with working page tokens."""
    status, page1 = await api.get("messages", params={"maxResults": "7"})
    assert status == 200
    assert len(page1["messages"]) == 7
    assert set(page1["messages"][0]) == {"id", "threadId"}
    assert page1["resultSizeEstimate"] == 20
    status, page2 = await api.get(
        "messages", params={"maxResults": "7", "pageToken": page1["nextPageToken"]}
    )
    ids = [m["id"] for m in page1["messages"] + page2["messages"]]
    box = emu.state.mailbox(ALICE)
    assert box is not None
    dates = [box.messages[i].internal_date for i in ids]
    assert dates == sorted(dates, reverse=True)
    assert len(set(ids)) == 14
    status, big = await api.get("messages", params={"maxResults": "100000"})
    assert status == 200
    assert len(big["messages"]) == 20
    assert "nextPageToken" not in big


async def test_messages_list_empty_result(api: Api) -> None:
    """An empty result is exactly {"resultSizeEstimate": 0}."""
    status, body = await api.get("messages", params={"q": "subject:nonexistentzzz"})
    assert (status, body) == (200, {"resultSizeEstimate": 0})


async def test_messages_list_label_ids_and_queries(api: Api, emu: Emulator) -> None:
    """labelIds and the q operators select the same messages the state says they should."""
    box = emu.state.mailbox(ALICE)
    assert box is not None
    _, unread = await api.get("messages", params={"labelIds": ["INBOX", "UNREAD"]})
    expected = {m.id for m in box.messages.values() if {"INBOX", "UNREAD"} <= set(m.label_ids)}
    assert {m["id"] for m in unread.get("messages", [])} == expected
    _, q_unread = await api.get("messages", params={"q": "is:unread in:inbox"})
    assert {m["id"] for m in q_unread.get("messages", [])} == expected
    _, sent = await api.get("messages", params={"q": "in:sent"})
    assert {m["id"] for m in sent["messages"]} == {
        m.id for m in box.messages.values() if "SENT" in m.label_ids
    }
    _, att = await api.get("messages", params={"q": "has:attachment"})
    with_att = {m.id for m in box.messages.values() if m.parsed.has_attachment}
    assert {m["id"] for m in att.get("messages", [])} == with_att


async def test_send_delivers_threads_and_is_searchable(
    api: Api, bob_api: Api, emu: Emulator
) -> None:
    """send → {id, threadId, labelIds:[SENT]}; recipient gets INBOX/UNREAD; replies thread."""
    status, sent = await api.post("messages/send", json={"raw": raw_message(subject="Plans")})
    assert status == 200
    assert sent == {"id": sent["id"], "threadId": sent["id"], "labelIds": ["SENT"]}
    _, found = await bob_api.get("messages", params={"q": f"from:{ALICE} subject:plans"})
    assert len(found["messages"]) == 1
    bob_copy = found["messages"][0]
    _, full = await bob_api.get(f"messages/{bob_copy['id']}", params={"format": "metadata"})
    assert {"UNREAD", "INBOX"} <= set(full["labelIds"])
    msg_id = next(
        h["value"] for h in full["payload"]["headers"] if h["name"].lower() == "message-id"
    )
    # Bob replies; the reply lands in Alice's original thread via In-Reply-To + subject.
    reply = raw_message(to=ALICE, subject="Re: Plans", In_Reply_To=msg_id, References=msg_id)
    status, bob_sent = await bob_api.post(
        "messages/send", json={"raw": reply, "threadId": bob_copy["threadId"]}
    )
    assert status == 200
    assert bob_sent["threadId"] == bob_copy["threadId"]
    _, thread = await api.get(f"threads/{sent['threadId']}")
    assert len(thread["messages"]) == 2
    _, by_id = await bob_api.get("messages", params={"q": f"rfc822msgid:{msg_id}"})
    assert by_id["messages"][0]["id"] == bob_copy["id"]


async def test_send_to_self_and_bcc_stripped(api: Api, emu: Emulator) -> None:
    """Mail to oneself is one SENT+INBOX message; Bcc recipients get a copy without Bcc."""
    _, sent = await api.post("messages/send", json={"raw": raw_message(to=ALICE, Bcc=CAROL)})
    _, msg = await api.get(f"messages/{sent['id']}", params={"format": "minimal"})
    assert {"SENT", "INBOX", "UNREAD"} <= set(msg["labelIds"])
    carol = emu.state.mailbox(CAROL)
    assert carol is not None
    newest = carol.newest_first()[0]
    assert b"Bcc:" not in newest.raw
    assert "INBOX" in newest.label_ids


async def test_send_validation_errors(api: Api) -> None:
    """Missing raw, undecodable raw and no recipients are 400 invalidArgument."""
    status, body = await api.post("messages/send", json={})
    assert status == 400
    assert body["error"]["errors"][0]["reason"] == "invalidArgument"
    status, body = await api.post("messages/send", json={"raw": "!!!"})
    assert status == 400
    no_rcpt = base64.urlsafe_b64encode(b"Subject: x\r\n\r\nbody").decode()
    status, body = await api.post("messages/send", json={"raw": no_rcpt})
    assert status == 400
    assert body["error"]["message"] == "Recipient address required"
    status, body = await api.post(
        "messages/send", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400


async def test_get_formats(api: Api) -> None:
    """full has payload parts, metadata filters headers, minimal omits payload, raw decodes."""
    _, listing = await api.get("messages", params={"q": "has:attachment"})
    mid = listing["messages"][0]["id"]
    _, full = await api.get(f"messages/{mid}")
    assert full["payload"]["mimeType"] == "multipart/mixed"
    assert full["payload"]["body"] == {"size": 0}
    att = next(p for p in full["payload"]["parts"] if p["filename"])
    assert set(att["body"]) == {"attachmentId", "size"}
    status, got = await api.get(f"messages/{mid}/attachments/{att['body']['attachmentId']}")
    assert status == 200
    assert len(base64.urlsafe_b64decode(got["data"])) == att["body"]["size"]
    assert isinstance(full["historyId"], str)
    assert isinstance(full["internalDate"], str)
    assert isinstance(full["sizeEstimate"], int)
    _, meta = await api.get(
        f"messages/{mid}", params={"format": "metadata", "metadataHeaders": ["Subject", "From"]}
    )
    assert {h["name"] for h in meta["payload"]["headers"]} == {"Subject", "From"}
    _, minimal = await api.get(f"messages/{mid}", params={"format": "minimal"})
    assert "payload" not in minimal
    assert "raw" not in minimal
    assert minimal["snippet"]
    _, raw = await api.get(f"messages/{mid}", params={"format": "raw"})
    assert "payload" not in raw
    assert len(base64.urlsafe_b64decode(raw["raw"])) == raw["sizeEstimate"]
    assert raw["raw"].endswith("=") or len(raw["raw"]) % 4 == 0
    status, body = await api.get(f"messages/{mid}", params={"format": "bogus"})
    assert status == 400


async def test_invalid_and_unknown_ids(api: Api) -> None:
    """Non-hex or ≥2^63 ids are 400 'Invalid id value'; well-formed unknown ids are 404."""
    for bad in ("nosuchmessageid", "ffffffffffffffff", "1234567890abcdef0"):
        status, body = await api.get(f"messages/{bad}")
        assert (status, body) == (400, envelope("messages.get with unparsable id"))
    for unknown in ("00000000deadbeef", "7fffffffffffffff", "abc123"):
        status, body = await api.get(f"messages/{unknown}")
        assert (status, body) == (404, envelope("messages.get unknown"))


async def test_modify_trash_untrash(api: Api) -> None:
    """modify adds/removes labels; trash hides from default list; untrash restores."""
    _, listing = await api.get("messages", params={"maxResults": "1"})
    mid = listing["messages"][0]["id"]
    status, mod = await api.post(
        f"messages/{mid}/modify", json={"addLabelIds": ["STARRED"], "removeLabelIds": ["UNREAD"]}
    )
    assert status == 200
    assert "STARRED" in mod["labelIds"]
    assert "UNREAD" not in mod["labelIds"]
    status, body = await api.post(f"messages/{mid}/modify", json={"addLabelIds": ["NOPE"]})
    assert status == 400
    assert body["error"]["message"] == "Invalid label: NOPE"
    status, trashed = await api.post(f"messages/{mid}/trash")
    assert status == 200
    assert "TRASH" in trashed["labelIds"]
    _, listing = await api.get("messages")
    assert mid not in {m["id"] for m in listing["messages"]}
    _, in_trash = await api.get("messages", params={"q": "in:trash"})
    assert mid in {m["id"] for m in in_trash["messages"]}
    status, restored = await api.post(f"messages/{mid}/untrash")
    assert status == 200
    assert "TRASH" not in restored["labelIds"]


async def test_threads_list_and_get(api: Api, emu: Emulator) -> None:
    """threads.list stubs carry snippet and historyId; threads.get returns all messages."""
    status, listing = await api.get("threads", params={"maxResults": "5"})
    assert status == 200
    assert len(listing["threads"]) == 5
    stub = listing["threads"][0]
    assert set(stub) == {"id", "snippet", "historyId"}
    status, thread = await api.get(f"threads/{stub['id']}", params={"format": "minimal"})
    box = emu.state.mailbox(ALICE)
    assert box is not None
    assert status == 200
    assert len(thread["messages"]) == len(box.threads[stub["id"]])
    assert thread["messages"][0]["id"] == stub["id"]  # first message id == threadId
    status, _ = await api.get("threads/00000000deadbeef")
    assert status == 404


async def test_drafts_lifecycle(api: Api, bob_api: Api) -> None:
    """drafts create/get/list/update/send/delete with Gmail's shapes."""
    status, draft = await api.post("drafts", json={"message": {"raw": raw_message(subject="D1")}})
    assert status == 200
    assert draft["message"]["labelIds"] == ["DRAFT"]
    assert set(draft) == {"id", "message"}
    status, got = await api.get(f"drafts/{draft['id']}")
    assert status == 200
    assert got["message"]["payload"]["mimeType"] == "text/plain"
    _, listing = await api.get("drafts")
    assert listing["drafts"][0]["id"] == draft["id"]
    status, updated, _ = await api.call(
        "PUT", f"drafts/{draft['id']}", json={"message": {"raw": raw_message(subject="D2")}}
    )
    assert status == 200
    assert updated["id"] == draft["id"]
    status, sent = await api.post("drafts/send", json={"id": draft["id"]})
    assert status == 200
    assert sent["labelIds"] == ["SENT"]
    _, found = await bob_api.get("messages", params={"q": "subject:D2"})
    assert len(found["messages"]) == 1
    status, _ = await api.get(f"drafts/{draft['id']}")
    assert status == 404
    _, other = await api.post("drafts", json={"message": {"raw": raw_message()}})
    status, _, _ = await api.call("DELETE", f"drafts/{other['id']}")
    assert status == 204


async def test_history_list(api: Api, emu: Emulator) -> None:
    """history.list reports adds and label changes; nothing new → historyId only; stale → 404."""
    _, profile = await api.get("profile")
    start = profile["historyId"]
    status, body = await api.get("history", params={"startHistoryId": start})
    assert (status, body) == (200, {"historyId": start})
    _, sent = await api.post("messages/send", json={"raw": raw_message()})
    await api.post(f"messages/{sent['id']}/modify", json={"addLabelIds": ["STARRED"]})
    _, hist = await api.get("history", params={"startHistoryId": start})
    kinds = [next(k for k in h if k not in ("id", "messages")) for h in hist["history"]]
    assert kinds == ["messagesAdded", "labelsAdded"]  # the History resource's plural keys
    assert hist["history"][1]["labelsAdded"][0]["labelIds"] == ["STARRED"]
    assert int(hist["historyId"]) > int(start)
    _, only_added = await api.get(
        "history", params={"startHistoryId": start, "historyTypes": "messageAdded"}
    )
    assert len(only_added["history"]) == 1
    status, body = await api.get("history", params={"startHistoryId": "1"})
    assert (status, body) == (404, envelope("history.list with expired"))
    status, body = await api.get("history")
    assert status == 400
    assert body["error"]["message"] == "Missing/invalid parameter: startHistoryId"


async def test_history_window_expires(emu: Emulator, api: Api) -> None:
    """Once history beyond the retention window is dropped, an old startHistoryId is 404."""
    box = emu.state.mailbox(ALICE)
    assert box is not None
    box.history_retention = 3
    start = str(box.history_id)
    for _ in range(5):
        await api.post("messages/send", json={"raw": raw_message()})
    status, _ = await api.get("history", params={"startHistoryId": start})
    assert status == 404


async def test_system_parameters_accepted(api: Api) -> None:
    """alt, prettyPrint, quotaUser, key, $.xgafv are accepted; fields filters the response."""
    status, body = await api.get(
        "messages",
        params={
            "alt": "json",
            "prettyPrint": "false",
            "quotaUser": "u1",
            "key": "k",
            "$.xgafv": "2",
            "fields": "messages(id),resultSizeEstimate",
            "maxResults": "2",
        },
    )
    assert status == 200
    assert body == {
        "messages": [{"id": m["id"]} for m in body["messages"]],
        "resultSizeEstimate": 20,
    }


async def test_missing_and_invalid_bearer(api: Api, emu: Emulator) -> None:
    """No Authorization → 401 'required'; bad token → 401 authError; both set WWW-Authenticate."""
    async with api.session.get(api.url("profile")) as resp:
        body = await resp.json()
        assert resp.status == 401
        assert "WWW-Authenticate" in resp.headers
        assert body == envelope("401 no Authorization")
    async with api.session.get(
        api.url("profile"), headers={"Authorization": "Bearer nope"}
    ) as resp:
        body = await resp.json()
        assert resp.status == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        assert body == envelope("401 present-but-invalid")
    emu.expire_access_tokens(ALICE)
    status, _ = await api.get("profile")
    assert status == 401


async def test_scopes_enforced_per_discovery(emu: Emulator, http) -> None:
    """A readonly token may list but not send (403 insufficientPermissions); send-only can send."""
    readonly = Api(emu, http, emu.issue_tokens(ALICE, [GMAIL + "readonly"])["access_token"])
    status, _ = await readonly.get("messages")
    assert status == 200
    status, body = await readonly.post("messages/send", json={"raw": raw_message()})
    assert (status, body) == (403, envelope("403 insufficient scope"))
    sender = Api(emu, http, emu.issue_tokens(ALICE, [GMAIL + "send"])["access_token"])
    status, _ = await sender.post("messages/send", json={"raw": raw_message()})
    assert status == 200
    status, _ = await sender.get("messages")
    assert status == 403


async def test_upload_send_media_and_multipart(api: Api, bob_api: Api, emu: Emulator) -> None:
    """/upload/... accepts uploadType=media and multipart; over 35 MB is 413."""
    upload = f"{emu.base_url}upload/gmail/v1/users/me/messages/send"
    raw = base64.urlsafe_b64decode(raw_message(subject="Media upload"))
    status, body, _ = await api.call(
        "POST",
        "",
        raw_url=upload + "?uploadType=media",
        data=raw,
        headers={"Content-Type": "message/rfc822"},
    )
    assert status == 200
    assert body["labelIds"] == ["SENT"]
    boundary = "b0undary"
    multipart = (
        (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        + base64.urlsafe_b64decode(raw_message(subject="Multipart upload"))
        + (f"\r\n--{boundary}--").encode()
    )
    status, body, _ = await api.call(
        "POST",
        "",
        raw_url=upload + "?uploadType=multipart",
        data=multipart,
        headers={"Content-Type": f"multipart/related; boundary={boundary}"},
    )
    assert status == 200
    _, found = await bob_api.get("messages", params={"q": "subject:upload"})
    assert len(found["messages"]) == 2
    huge = b"To: bob@example.com\r\nSubject: big\r\n\r\n" + b"x" * 36_700_161
    status, body, _ = await api.call(
        "POST",
        "",
        raw_url=upload + "?uploadType=media",
        data=io.BytesIO(huge),
        headers={"Content-Type": "message/rfc822"},
    )
    assert status == 413
    assert body["error"]["code"] == 413


async def test_batch_endpoint(api: Api, emu: Emulator) -> None:
    """multipart/mixed batch: each part answered with Content-ID <response-...>; >100 → 400."""
    _, listing = await api.get("messages", params={"maxResults": "3"})
    boundary = "batch_abc"
    parts = []
    for i, m in enumerate(listing["messages"]):
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item{i}>\r\n\r\n"
            f"GET /gmail/v1/users/me/messages/{m['id']}?format=minimal HTTP/1.1\r\n\r\n"
        )
    parts.append(
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <bad>\r\n\r\n"
        "GET /gmail/v1/users/me/messages/zzz HTTP/1.1\r\n\r\n"
    )
    payload = "".join(parts) + f"--{boundary}--\r\n"
    headers = {
        "Authorization": f"Bearer {api.token}",
        "Content-Type": f"multipart/mixed; boundary={boundary}",
    }
    async with api.session.post(
        emu.base_url + "batch/gmail/v1", data=payload, headers=headers
    ) as r:
        text = await r.text()
        assert r.status == 200
        assert r.content_type == "multipart/mixed"
    for i in range(3):
        assert f"Content-ID: <response-item{i}>" in text
    assert text.count("HTTP/1.1 200 OK") == 3
    assert "HTTP/1.1 400 Bad Request" in text
    too_many = (
        "".join(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{i}>\r\n\r\n"
            "GET /gmail/v1/users/me/profile HTTP/1.1\r\n\r\n"
            for i in range(101)
        )
        + f"--{boundary}--\r\n"
    )
    async with api.session.post(emu.base_url + "batch", data=too_many, headers=headers) as r:
        assert r.status == 400
