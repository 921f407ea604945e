"""Requests built by googleapiclient from the static discovery document, fixed for our endpoint."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import connector.gmail.calls as calls_module
from connector.gmail.calls import JSON_RAW_LIMIT, CallFactory, Method
from connector.ports import Fetch, Format


def test_requests_target_configured_endpoint():
    """Plain calls, uploads and batches all use the configured scheme and host."""
    factory = CallFactory("http://127.0.0.1:9999")
    get = factory.get_message("abc", Fetch(Format.METADATA, ("Subject", "From")))
    assert get.method is Method.MESSAGES_GET
    assert get.http.verb == "GET"
    assert get.http.uri.startswith("http://127.0.0.1:9999/gmail/v1/users/me/messages/abc?")
    assert "metadataHeaders=Subject&metadataHeaders=From" in get.http.uri
    upload = factory.send_message(b"x" * (JSON_RAW_LIMIT + 1), "t1")
    assert upload.http.uri.startswith(
        "http://127.0.0.1:9999/upload/gmail/v1/users/me/messages/send"
    )
    assert "uploadType=multipart" in upload.http.uri
    assert factory.batch_uri == "http://127.0.0.1:9999/batch/gmail/v1"


def test_small_send_is_base64_json_and_not_idempotent():
    """A small message is sent as JSON raw with threadId; send and drafts.create never retry."""
    factory = CallFactory("http://127.0.0.1:9999/")
    send = factory.send_message(b"Subject: s\r\n\r\nhi", "t1")
    assert send.http.body == b'{"threadId": "t1", "raw": "U3ViamVjdDogcw0KDQpoaQ=="}'
    assert not send.idempotent
    assert not factory.create_draft(b"x", None).idempotent
    assert factory.update_draft("d", b"x", None).idempotent


def test_resources_are_built_once(monkeypatch):
    """After construction, building calls never rebuilds the discovery service."""
    factory = CallFactory("http://127.0.0.1:9999/")

    def no_build(*_a, **_k):
        raise AssertionError("build() called per request")

    monkeypatch.setattr(calls_module, "build", no_build)
    for _ in range(3):
        factory.get_message("abc")
        factory.list_history("123")
        factory.send_draft("d1")


def test_decoder_handles_empty_and_json_bodies():
    """The library's postproc decodes JSON; a 204 from drafts.delete decodes to {}."""
    factory = CallFactory("http://127.0.0.1:9999/")
    assert factory.get_profile().decode(200, b'{"historyId": "5"}') == {"historyId": "5"}
    assert factory.delete_draft("d").decode(204, b"") == {}


@given(st.text(min_size=1, max_size=20))
def test_templated_get_matches_library_build(message_id):
    """The per-id substitution yields exactly the URI the library builds for that id."""
    factory = _FACTORY
    ours = factory.get_message(message_id, Fetch(Format.METADATA, ("From", "Subject")))
    direct = factory._messages.get(
        userId="me", id=message_id, format="metadata", metadataHeaders=["From", "Subject"]
    )
    assert ours.http.uri == direct.uri
    assert ours.http.verb == direct.method


_FACTORY = CallFactory("http://127.0.0.1:9999/")
