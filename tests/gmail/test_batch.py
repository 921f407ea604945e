"""Batching: wire codec, mixed per-part results, splitting, retries of failed parts."""

from __future__ import annotations

import pytest

from connector.emulator.faults import FaultConfig
from connector.gmail import errors
from connector.gmail.batch import (
    MAX_BATCH_PARTS,
    BatchFormatError,
    decode_batch,
    encode_batch,
)
from connector.gmail.transport import HttpCall
from connector.ports import FETCH_MINIMAL, Fetch, Format


def test_encode_uses_relative_targets_and_content_ids():
    """Each part is an application/http request line with the path and a numbered Content-ID."""
    calls = [
        HttpCall("GET", "http://h:1/gmail/v1/users/me/messages/a?format=metadata&alt=json"),
        HttpCall(
            "POST", "http://h:1/gmail/v1/users/me/x", {"content-type": "application/json"}, b"{}"
        ),
    ]
    request = encode_batch(calls)
    assert request.content_type.startswith("multipart/mixed; boundary=")
    text = request.body.decode()
    assert "GET /gmail/v1/users/me/messages/a?format=metadata&alt=json HTTP/1.1" in text
    assert "Content-ID: <item-1>" in text
    assert "Content-Length: 2\r\n\r\n{}" in text
    with pytest.raises(ValueError, match="1 to 50"):
        encode_batch([calls[0]] * (MAX_BATCH_PARTS + 1))


def test_decode_tolerates_lf_reordering_and_missing_parts():
    """LF line endings, parts out of order and a missing part are all handled per index."""
    body = (
        b"--b1\n"
        b"Content-Type: application/http\n"
        b"Content-ID: <response-item-2>\n\n"
        b"HTTP/1.1 404 Not Found\nContent-Type: application/json\n\n"
        b'{"error": {"code": 404}}\n'
        b"--b1\n"
        b"Content-Type: application/http\n"
        b"Content-ID: <response-item-0>\n\n"
        b'HTTP/1.1 200 OK\nContent-Type: application/json\n\n{"id": "a"}\n'
        b"--b1--\n"
    )
    answers = decode_batch('multipart/mixed; boundary="b1"', body, 3)
    assert answers[0] is not None
    assert answers[0].status == 200
    assert answers[0].body == b'{"id": "a"}'
    assert answers[1] is None
    assert answers[2] is not None
    assert answers[2].status == 404
    with pytest.raises(BatchFormatError):
        decode_batch("application/json", body, 3)


async def test_mixed_results_per_part(emu, user, client):
    """A batch of found, unknown and malformed ids yields messages and typed errors in order."""
    listing = await client.list_messages(user, max_results=3)
    good = [m["id"] for m in listing["messages"]]
    ids = [good[0], "00000000deadbeef", good[1], "not-an-id", good[2]]
    results = await client.get_messages_detailed(user, ids, FETCH_MINIMAL)
    assert [r["id"] for r in (results[0], results[2], results[4])] == [good[0], good[1], good[2]]
    assert isinstance(results[1], errors.NotFoundError)
    assert isinstance(results[3], errors.InvalidRequestError)
    assert emu.stats.batches >= 1
    with pytest.raises(errors.NotFoundError):
        await client.get_messages(user, ids)


async def test_large_request_is_split_into_batches_of_50(emu, user, client):
    """80 ids go out as two batches (≤ 50 parts each) to the configured batch URI."""
    ids = await client.list_all_message_ids(user)
    ids = (ids * 2)[:80]
    emu.stats.reset()
    results = await client.get_messages(user, ids, Fetch(Format.METADATA, ("Subject",)))
    assert [r["id"] for r in results] == ids
    assert emu.stats.batches == 2
    assert emu.stats.requests["messages.get"] == 80
    assert client.calls.batch_uri == emu.gmail_endpoint + "batch/gmail/v1"


async def test_failed_parts_are_retried(emu, user, client):
    """Parts failing with 5xx inside a batch are retried until every part succeeds."""
    ids = await client.list_all_message_ids(user)
    emu.set_faults(FaultConfig(seed=3, error_rate=0.4, methods=frozenset({"messages.get"})))
    results = await client.get_messages(user, ids, FETCH_MINIMAL)
    assert [r["id"] for r in results] == ids
    assert emu.faults.injected > 0
