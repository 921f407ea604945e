"""Read paths: profile, labels, threads, listing filters and attachment streaming."""

from __future__ import annotations

import os

from connector.mime import Attachment, Composition, compose
from connector.ports import Format


async def test_profile_labels_thread_and_listing(emu, user, client):
    """Profile, labels, a listing filtered by label and query, and a thread read back."""
    profile = await client.get_profile(user)
    assert profile["emailAddress"] == user
    labels = await client.list_labels(user)
    assert "INBOX" in {label["id"] for label in labels["labels"]}
    inbox = await client.list_messages(user, label_ids=("INBOX",), max_results=5)
    assert 0 < len(inbox["messages"]) <= 5
    page2 = await client.list_messages(
        user, label_ids=("INBOX",), page_token=inbox["nextPageToken"]
    )
    assert not {m["id"] for m in page2["messages"]} & {m["id"] for m in inbox["messages"]}
    thread = await client.get_thread(user, inbox["messages"][0]["threadId"], fmt=Format.MINIMAL)
    assert inbox["messages"][0]["id"] in [m["id"] for m in thread["messages"]]
    none = await client.list_messages(user, query="subject:no-such-subject-anywhere")
    assert none.get("messages", []) == []


async def test_stream_attachment_in_decoded_chunks(emu, user, make_client):
    """An attachment streams back as several decoded chunks equal to the original bytes."""
    client = make_client(attachment_chunk=64 * 1024)
    blob = os.urandom(300_000)
    message = compose(
        Composition(
            sender=user,
            to=[emu.users[1]],
            subject="blob",
            text="see attached",
            attachments=[Attachment("blob.bin", blob)],
        )
    )
    sent = await client.send_message(user, message)
    full = await client.get_message(user, sent["id"])
    part = next(p for p in full["payload"]["parts"] if p.get("filename") == "blob.bin")
    chunks = [
        c async for c in client.stream_attachment(user, sent["id"], part["body"]["attachmentId"])
    ]
    assert len(chunks) == 5
    # Whole base64 quanta decode alone, so chunks are the size rounded down to 3 bytes.
    assert {len(c) for c in chunks[:-1]} == {64 * 1024 // 3 * 3}
    assert b"".join(chunks) == blob
