"""Pins of Gmail behaviour the emulator once got wrong (issue #14), each stated as Gmail's own.

Sources: Gmail's reference documentation (History, MessagePart, MessagePartBody, messages.import,
sending guide, usage limits) and an independent Gmail fake recorded from live Gmail.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiohttp

from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, BOB, GMAIL, Api
from tests.emulator.test_gmail_api import raw_message

FULL = "https://mail.google.com/"
RFC3339_SENDING = re.compile(
    r"^User-rate limit exceeded\.  Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"\(Mail sending\)$"
)


def _with_attachment() -> str:
    msg = EmailMessage()
    msg["To"], msg["Subject"] = BOB, "report"
    msg.set_content("see attached")
    msg.add_attachment(b"\x00\x01binary" * 10, maintype="application", subtype="octet-stream",
                       filename="r.bin")  # fmt: skip
    return base64.urlsafe_b64encode(msg.as_bytes()).decode()


def _attachment_id(message: dict) -> str:
    return next(p["body"]["attachmentId"] for p in message["payload"]["parts"] if p["filename"])


def _full(api: Api) -> Api:
    """The same user with https://mail.google.com/, the only scope that deletes permanently."""
    return Api(api.emu, api.session, api.emu.issue_tokens(ALICE, [FULL])["access_token"])


async def test_history_uses_the_plural_resource_keys(api: Api) -> None:
    """Gmail's History resource names its changes messagesAdded, messagesDeleted, labelsAdded,
    labelsRemoved; the singular forms are only `historyTypes` filter values."""
    _, profile = await api.get("profile")
    start = profile["historyId"]
    _, sent = await api.post("messages/send", json={"raw": raw_message()})
    await api.post(f"messages/{sent['id']}/modify", json={"addLabelIds": ["STARRED"]})
    await api.post(f"messages/{sent['id']}/modify", json={"removeLabelIds": ["STARRED"]})
    _, inserted = await api.post("messages", json={"raw": raw_message()})
    status, _, _ = await _full(api).call("DELETE", f"messages/{inserted['id']}")
    assert status == 204
    _, hist = await api.get("history", params={"startHistoryId": start})
    keys = [sorted(set(h) - {"id", "messages"}) for h in hist["history"]]
    assert keys == [["messagesAdded"], ["labelsAdded"], ["labelsRemoved"], ["messagesAdded"],
                    ["messagesDeleted"]]  # fmt: skip
    assert hist["history"][2]["labelsRemoved"][0]["labelIds"] == ["STARRED"]
    assert hist["history"][4]["messagesDeleted"][0]["message"]["id"] == inserted["id"]
    _, only = await api.get(
        "history", params={"startHistoryId": start, "historyTypes": "labelRemoved"}
    )
    assert [sorted(set(h) - {"id", "messages"}) for h in only["history"]] == [["labelsRemoved"]]


async def test_seeded_history_id_is_a_valid_cursor(api: Api, emu: Emulator) -> None:
    """Gmail keeps history for about a week: a historyId read from an existing (seeded)
    message is a valid startHistoryId, answering the messages added after it."""
    _, listing = await api.get("messages", params={"maxResults": "500"})
    oldest = listing["messages"][-1]
    _, msg = await api.get(f"messages/{oldest['id']}", params={"format": "minimal"})
    status, hist = await api.get("history", params={"startHistoryId": msg["historyId"]})
    assert status == 200
    added = {h["messagesAdded"][0]["message"]["id"] for h in hist["history"]}
    box = emu.state.mailbox(ALICE)
    assert box is not None
    later = {m.id for m in box.messages.values() if m.history_id > int(msg["historyId"])}
    assert added == later
    assert later


async def test_metadata_payload_has_only_mime_type_and_headers(api: Api) -> None:
    """format=metadata: the payload is {mimeType, headers}; no partId, filename or body."""
    _, listing = await api.get("messages", params={"maxResults": "1"})
    mid = listing["messages"][0]["id"]
    _, msg = await api.get(f"messages/{mid}", params={"format": "metadata"})
    assert set(msg["payload"]) == {"mimeType", "headers"}


async def test_attachment_get_answers_size_and_data_for_unstable_ids(api: Api) -> None:
    """attachments.get answers {size, data} (no attachmentId); two gets of one message hand out
    different attachment ids, and each of them fetches the same bytes."""
    _, stored = await api.post("messages", json={"raw": _with_attachment()})
    _, first = await api.get(f"messages/{stored['id']}")
    _, second = await api.get(f"messages/{stored['id']}")
    id1, id2 = _attachment_id(first), _attachment_id(second)
    assert id1 != id2
    status1, body1 = await api.get(f"messages/{stored['id']}/attachments/{id1}")
    status2, body2 = await api.get(f"messages/{stored['id']}/attachments/{id2}")
    assert (status1, status2) == (200, 200)
    assert set(body1) == {"size", "data"}
    assert body1 == body2
    assert base64.urlsafe_b64decode(body1["data"]) == b"\x00\x01binary" * 10
    _, other = await api.post("messages", json={"raw": _with_attachment()})
    status, _ = await api.get(f"messages/{other['id']}/attachments/{id1}")
    assert status == 400  # an id is only good for the message it was handed out with


async def test_max_results_zero_is_refused(api: Api) -> None:
    """maxResults=0 is a 400 invalidArgument, not 'the default page'."""
    for path in ("messages", "threads", "drafts"):
        status, body = await api.get(path, params={"maxResults": "0"})
        assert status == 400, path
        assert body["error"]["errors"][0]["reason"] == "invalidArgument"


async def test_empty_from_matches_everything(api: Api) -> None:
    """`from:` with an empty value is no condition: the same result as no query at all."""
    _, everything = await api.get("messages", params={"maxResults": "500"})
    _, empty_from = await api.get("messages", params={"maxResults": "500", "q": "from:"})
    assert empty_from["messages"] == everything["messages"]


async def test_import_defaults_internal_date_to_the_date_header(api: Api) -> None:
    """messages.import's internalDateSource defaults to dateHeader; insert's to receivedTime;
    receivedTime asked of import uses the receipt time."""
    raw = raw_message(Date="Tue, 03 Mar 2020 10:00:00 +0000")
    header_ms = str(int(datetime(2020, 3, 3, 10, tzinfo=UTC).timestamp() * 1000))
    _, imported = await api.post("messages/import", json={"raw": raw})
    _, got = await api.get(f"messages/{imported['id']}", params={"format": "minimal"})
    assert got["internalDate"] == header_ms
    _, inserted = await api.post("messages", json={"raw": raw})
    _, got = await api.get(f"messages/{inserted['id']}", params={"format": "minimal"})
    assert int(got["internalDate"]) > int(header_ms) + 10**11
    _, received = await api.post(
        "messages/import", json={"raw": raw}, params={"internalDateSource": "receivedTime"}
    )
    _, got = await api.get(f"messages/{received['id']}", params={"format": "minimal"})
    assert got["internalDate"] != header_ms


async def test_reply_threads_only_with_in_reply_to_and_references(api: Api) -> None:
    """A send joins threadId only if it has In-Reply-To and References and the subject
    matches; with the thread id and subject alone it starts a new thread."""
    _, first = await api.post("messages/send", json={"raw": raw_message(subject="Budget")})
    _, meta = await api.get(f"messages/{first['id']}", params={"format": "metadata"})
    rfc_id = next(
        h["value"] for h in meta["payload"]["headers"] if h["name"].lower() == "message-id"
    )
    bare = raw_message(subject="Re: Budget")
    _, unthreaded = await api.post("messages/send", json={"raw": bare, "threadId": first["id"]})
    assert unthreaded["threadId"] != first["threadId"]
    full = raw_message(subject="Re: Budget", In_Reply_To=rfc_id, References=rfc_id)
    _, threaded = await api.post("messages/send", json={"raw": full, "threadId": first["id"]})
    assert threaded["threadId"] == first["threadId"]


async def test_send_to_oneself_answers_the_stored_labels(api: Api) -> None:
    """The send answer lists the stored message's labels: to oneself SENT, INBOX and UNREAD."""
    _, sent = await api.post("messages/send", json={"raw": raw_message(to=ALICE)})
    _, stored = await api.get(f"messages/{sent['id']}", params={"format": "minimal"})
    assert sorted(sent["labelIds"]) == sorted(stored["labelIds"]) == ["INBOX", "SENT", "UNREAD"]


async def test_rate_limit_answers_carry_retry_after(emu: Emulator, api: Api) -> None:
    """A 429 for the per-user unit quota carries Retry-After in whole seconds (≥ 1)."""
    from connector.emulator.quota import QuotaConfig

    emu.set_quota(QuotaConfig(units_per_window=10, window_seconds=30))
    statuses = []
    for _ in range(4):
        status, body, resp = await api.call("GET", "messages", params={"maxResults": "1"})
        statuses.append(status)
    assert statuses[-1] == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 30
    assert body["error"]["errors"][0]["reason"] == "rateLimitExceeded"


async def test_sending_limit_names_the_time_sending_resumes(emu: Emulator, api: Api) -> None:
    """Past the daily sending limit, messages.send and drafts.send answer 429 'User-rate limit
    exceeded.  Retry after <RFC 3339> (Mail sending)' (Retry-After agrees); reads still work."""
    until = datetime.now(UTC) + timedelta(hours=5)
    emu.sending.pause(ALICE, until)
    status, body, resp = await api.call("POST", "messages/send", json={"raw": raw_message()})
    assert status == 429
    match = RFC3339_SENDING.match(body["error"]["message"])
    assert match is not None, body
    resumes = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((resumes - until).total_seconds()) < 0.01
    assert math.isclose(int(resp.headers["Retry-After"]), 5 * 3600, abs_tol=2)
    assert body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    _, draft = await api.post("drafts", json={"message": {"raw": raw_message()}})
    status, _ = await api.post("drafts/send", json={"id": draft["id"]})
    assert status == 429
    status, _ = await api.get("messages", params={"maxResults": "1"})
    assert status == 200


async def test_daily_send_limit_counts_sends(http: aiohttp.ClientSession) -> None:
    """With a daily cap of 2, the third send of the day is refused until the first ages out."""
    from connector.emulator.server import EmulatorConfig, run_emulator

    async with run_emulator(EmulatorConfig(seed="cap", users=2, messages_per_user=1,
                                           daily_send_limit=2)) as emu:  # fmt: skip
        api = Api(emu, http, emu.issue_tokens(emu.users[0])["access_token"])
        codes = [(await api.post("messages/send", json={"raw": raw_message()}))[0]
                 for _ in range(3)]  # fmt: skip
        assert codes == [200, 200, 429]


async def test_watch_and_stop(api: Api) -> None:
    """users.watch answers {historyId, expiration} (7 days, ms strings) for an existing topic,
    400 for a malformed one; users.stop answers 204."""
    api.emu.pubsub.create_topic("projects/my-project/topics/gmail")
    _, profile = await api.get("profile")
    status, body = await api.post(
        "watch", json={"topicName": "projects/my-project/topics/gmail", "labelIds": ["INBOX"]}
    )
    assert status == 200
    assert body["historyId"] == profile["historyId"]
    days = (int(body["expiration"]) / 1000 - datetime.now(UTC).timestamp()) / 86400
    assert 6.9 < days <= 7.0
    status, bad = await api.post("watch", json={"topicName": "gmail"})
    assert status == 400
    assert bad["error"]["status"] == "INVALID_ARGUMENT"
    status, _, _ = await api.call("POST", "stop")
    assert status == 204


async def test_settings_send_as_and_vacation(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """sendAs.list names the primary address; getVacation/updateVacation round-trip;
    updateVacation needs gmail.settings.basic (403 insufficientPermissions with modify)."""
    api = Api(emu, http, emu.issue_tokens(ALICE, [GMAIL + "settings.basic"])["access_token"])
    _, send_as = await api.get("settings/sendAs")
    assert send_as["sendAs"][0]["sendAsEmail"] == ALICE
    assert send_as["sendAs"][0]["isPrimary"] is True
    _, vacation = await api.get("settings/vacation")
    assert vacation == {"enableAutoReply": False}
    wanted = {"enableAutoReply": True, "responseSubject": "Away", "responseBodyPlainText": "Back"}
    status, updated, _ = await api.call("PUT", "settings/vacation", json=wanted)
    assert (status, updated) == (200, wanted)
    assert (await api.get("settings/vacation"))[1] == wanted
    modify_only = Api(emu, http, emu.issue_tokens(ALICE, [GMAIL + "modify"])["access_token"])
    status, body, _ = await modify_only.call("PUT", "settings/vacation", json=wanted)
    assert status == 403
    assert body["error"]["errors"][0]["reason"] == "insufficientPermissions"


async def test_history_records_label_changes_and_deletions_of_threads(api: Api) -> None:
    """threads.modify and threads.delete are reported per message as labelsAdded and
    messagesDeleted, and batchModify as one labelsRemoved per message."""
    _, listing = await api.get("threads", params={"maxResults": "1"})
    tid = listing["threads"][0]["id"]
    _, profile = await api.get("profile")
    start = profile["historyId"]
    _, thread = await api.get(f"threads/{tid}", params={"format": "minimal"})
    ids = [m["id"] for m in thread["messages"]]
    await api.post(f"threads/{tid}/modify", json={"addLabelIds": ["STARRED"]})
    await api.post("messages/batchModify", json={"ids": ids, "removeLabelIds": ["STARRED"]})
    status, _, _ = await _full(api).call("DELETE", f"threads/{tid}")
    assert status == 204
    _, hist = await api.get("history", params={"startHistoryId": start})
    by_key: dict[str, list[str]] = {}
    for record in hist["history"]:
        for key in ("labelsAdded", "labelsRemoved", "messagesDeleted"):
            for entry in record.get(key, []):
                by_key.setdefault(key, []).append(entry["message"]["id"])
    assert by_key == {"labelsAdded": ids, "labelsRemoved": ids, "messagesDeleted": ids}
