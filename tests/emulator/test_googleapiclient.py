"""The unmodified google-api-python-client against the emulator (sync client in a thread)."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from contextlib import closing
from email.message import EmailMessage
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, MediaIoBaseUpload

from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, BOB, GMAIL


def service(emu: Emulator, token: str) -> Any:
    return build(
        "gmail",
        "v1",
        credentials=Credentials(token=token),
        client_options={"api_endpoint": emu.gmail_endpoint},
        static_discovery=True,
        cache_discovery=False,
    )


def mime(to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["To"], msg["Subject"] = to, subject
    msg.set_content("Grüße — from googleapiclient", cte="quoted-printable")
    msg.add_attachment(
        b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="blob.bin"
    )
    return msg.as_bytes()


@pytest.fixture
def svc(emu: Emulator) -> Iterator[Any]:
    with closing(service(emu, emu.issue_tokens(ALICE)["access_token"])) as resource:
        yield resource


async def test_list_and_get(svc: Any) -> None:
    """messages.list and messages.get through googleapiclient's execute()."""

    def work() -> tuple[dict, dict]:
        listing = svc.users().messages().list(userId="me", maxResults=5).execute()
        msg = svc.users().messages().get(userId="me", id=listing["messages"][0]["id"]).execute()
        return listing, msg

    listing, msg = await asyncio.to_thread(work)
    assert len(listing["messages"]) == 5
    assert msg["id"] == listing["messages"][0]["id"]
    assert "payload" in msg


async def test_send_raw_and_read_back(emu: Emulator, svc: Any) -> None:
    """messages.send with a JSON raw body; the recipient reads the attachment back."""
    raw = base64.urlsafe_b64encode(mime(BOB, "via client")).decode()
    sent = await asyncio.to_thread(
        lambda: svc.users().messages().send(userId="me", body={"raw": raw}).execute()
    )
    assert sent["labelIds"] == ["SENT"]
    bob = service(emu, emu.issue_tokens(BOB)["access_token"])

    def read() -> bytes:
        with closing(bob):
            found = bob.users().messages().list(userId="me", q="subject:(via client)").execute()
            msg = bob.users().messages().get(userId="me", id=found["messages"][0]["id"]).execute()
            part = next(p for p in msg["payload"]["parts"] if p["filename"] == "blob.bin")
            att = (
                bob.users()
                .messages()
                .attachments()
                .get(userId="me", messageId=msg["id"], id=part["body"]["attachmentId"])
                .execute()
            )
            return base64.urlsafe_b64decode(att["data"])

    assert await asyncio.to_thread(read) == b"\x00\x01binary"


async def test_send_media_upload_multipart(emu: Emulator, svc: Any) -> None:
    """messages.send with MediaIoBaseUpload (uploadType=multipart) once the URI scheme is fixed."""

    def work() -> dict:
        media = MediaIoBaseUpload(io.BytesIO(mime(BOB, "uploaded")), mimetype="message/rfc822")
        request = svc.users().messages().send(userId="me", body={}, media_body=media)
        assert "uploadType=multipart" in request.uri
        # googleapiclient keeps the discovery document's https scheme for upload URIs.
        request.uri = request.uri.replace("https://", "http://", 1)
        return request.execute()

    sent = await asyncio.to_thread(work)
    assert sent["labelIds"] == ["SENT"]
    assert emu.count_messages(BOB, "INBOX") >= 1


async def test_drafts_via_client(svc: Any) -> None:
    """drafts.create / get / send through the client."""
    raw = base64.urlsafe_b64encode(mime(BOB, "draft via client")).decode()

    def work() -> tuple[dict, dict, dict]:
        draft = svc.users().drafts().create(userId="me", body={"message": {"raw": raw}}).execute()
        got = svc.users().drafts().get(userId="me", id=draft["id"], format="minimal").execute()
        sent = svc.users().drafts().send(userId="me", body={"id": draft["id"]}).execute()
        return draft, got, sent

    draft, got, sent = await asyncio.to_thread(work)
    assert draft["message"]["labelIds"] == ["DRAFT"]
    assert got["id"] == draft["id"]
    assert sent["labelIds"] == ["SENT"]


async def test_batch_via_client(emu: Emulator, svc: Any) -> None:
    """BatchHttpRequest against emu.batch_uri delivers every part to its callback."""
    results: dict[str, Any] = {}

    def work() -> None:
        listing = svc.users().messages().list(userId="me", maxResults=4).execute()
        batch = BatchHttpRequest(
            callback=lambda rid, resp, exc: results.__setitem__(rid, (resp, exc)),
            batch_uri=emu.batch_uri,
        )
        for m in listing["messages"]:
            batch.add(svc.users().messages().get(userId="me", id=m["id"], format="minimal"))
        batch.add(svc.users().messages().get(userId="me", id="00000000deadbeef"))
        batch.execute()

    await asyncio.to_thread(work)
    assert len(results) == 5
    oks = [resp for resp, exc in results.values() if exc is None]
    errs = [exc for _, exc in results.values() if exc is not None]
    assert len(oks) == 4
    assert all("labelIds" in r for r in oks)
    assert len(errs) == 1
    assert isinstance(errs[0], HttpError)
    assert errs[0].resp.status == 404


async def test_client_sees_http_error_for_scope(emu: Emulator) -> None:
    """A readonly token's send raises HttpError 403 with reason insufficientPermissions."""
    before = emu.count_messages(BOB, "INBOX")
    raw = base64.urlsafe_b64encode(mime(BOB, "nope")).decode()
    token = emu.issue_tokens(ALICE, [GMAIL + "readonly"])["access_token"]
    with closing(service(emu, token)) as ro, pytest.raises(HttpError) as info:
        await asyncio.to_thread(
            lambda: ro.users().messages().send(userId="me", body={"raw": raw}).execute()
        )
    assert info.value.resp.status == 403
    assert info.value.error_details[0]["reason"] == "insufficientPermissions"
    assert emu.count_messages(BOB, "INBOX") == before


async def test_send_resumable_upload_in_chunks(emu: Emulator, svc: Any) -> None:
    """MediaIoBaseUpload(resumable=True) with small chunks: 308 until complete, then sent."""
    data = mime(BOB, "resumable upload") + b"\r\n" + b"x" * 600_000

    def work() -> dict:
        media = MediaIoBaseUpload(
            io.BytesIO(data), mimetype="message/rfc822", chunksize=256 * 1024, resumable=True
        )
        request = svc.users().messages().send(userId="me", body={}, media_body=media)
        request.uri = request.uri.replace("https://", "http://", 1)
        response = None
        chunks = 0
        while response is None:
            _status, response = request.next_chunk()
            chunks += 1
        assert chunks == 3
        return response

    sent = await asyncio.to_thread(work)
    assert sent["labelIds"] == ["SENT"]
    box = emu.state.mailbox(ALICE)
    assert box is not None
    assert box.messages[sent["id"]].raw.endswith(b"x" * 1000)
