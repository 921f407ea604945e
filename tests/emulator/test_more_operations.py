"""Less common operations: draft uploads, label update/delete, batchModify, thread changes."""

from __future__ import annotations

import base64

from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, Api
from tests.emulator.test_gmail_api import raw_message


async def test_draft_create_via_media_upload(api: Api, emu: Emulator) -> None:
    """POST /upload/.../drafts?uploadType=media stores a DRAFT message."""
    data = base64.urlsafe_b64decode(raw_message(subject="Upload draft"))
    status, draft, _ = await api.call(
        "POST",
        "",
        raw_url=f"{emu.base_url}upload/gmail/v1/users/me/drafts?uploadType=media",
        data=data,
        headers={"Content-Type": "message/rfc822"},
    )
    assert status == 200
    assert draft["message"]["labelIds"] == ["DRAFT"]
    _, found = await api.get("messages", params={"q": "in:drafts subject:(Upload draft)"})
    assert found["messages"][0]["id"] == draft["message"]["id"]


async def test_label_update_and_delete(api: Api) -> None:
    """A user label can be renamed and deleted (removed from messages); system labels cannot."""
    _, label = await api.post("labels", json={"name": "Temp"})
    _, listing = await api.get("messages", params={"maxResults": "1"})
    mid = listing["messages"][0]["id"]
    await api.post(f"messages/{mid}/modify", json={"addLabelIds": [label["id"]]})
    status, renamed, _ = await api.call("PATCH", f"labels/{label['id']}", json={"name": "Kept"})
    assert status == 200
    assert renamed["name"] == "Kept"
    _, by_name = await api.get("messages", params={"q": "label:kept"})
    assert [m["id"] for m in by_name["messages"]] == [mid]
    status, _, _ = await api.call("DELETE", f"labels/{label['id']}")
    assert status == 204
    _, msg = await api.get(f"messages/{mid}", params={"format": "minimal"})
    assert label["id"] not in msg.get("labelIds", [])
    status, _, _ = await api.call("DELETE", "labels/INBOX")
    assert status == 400


async def test_batch_modify_and_thread_trash(api: Api, emu: Emulator) -> None:
    """messages.batchModify changes every id; threads.trash trashes every message in a thread."""
    _, listing = await api.get("messages", params={"maxResults": "3"})
    ids = [m["id"] for m in listing["messages"]]
    status, _, _ = await api.call(
        "POST", "messages/batchModify", json={"ids": ids, "addLabelIds": ["STARRED"]}
    )
    assert status == 204
    box = emu.state.mailbox(ALICE)
    assert box is not None
    assert all("STARRED" in box.messages[i].label_ids for i in ids)
    thread_id = next(t for t, msgs in box.threads.items() if len(msgs) > 1)
    status, thread = await api.post(f"threads/{thread_id}/trash")
    assert status == 200
    assert all("TRASH" in m["labelIds"] for m in thread["messages"])
    _, listing = await api.get("threads", params={"maxResults": "500"})
    assert thread_id not in {t["id"] for t in listing["threads"]}
    _, with_trash = await api.get(
        "threads", params={"maxResults": "500", "includeSpamTrash": "true"}
    )
    assert thread_id in {t["id"] for t in with_trash["threads"]}


async def test_unknown_path_and_method(api: Api, emu: Emulator) -> None:
    """Unknown Gmail paths are 404; a known path with the wrong HTTP method is 405."""
    status, body = await api.get("nonsense/path")
    assert status == 404
    assert body["error"]["status"] == "NOT_FOUND"
    status, _, _ = await api.call("PUT", "profile")
    assert status == 405
