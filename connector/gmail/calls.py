"""Gmail API calls built by google-api-python-client from its bundled discovery document.

The library only *builds* requests here (verb, URI, headers, body, response decoder); they are
sent by our async transport. The service and resource objects are built once and cached, since
rebuilding the resource tree costs far more than building one request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Unpack
from urllib.parse import quote, urlsplit, urlunsplit

import httplib2
from googleapiclient.discovery import build
from googleapiclient.http import HttpRequest, MediaInMemoryUpload

from connector.gmail.errors import NetworkError
from connector.gmail.transport import HttpCall
from connector.ports import FETCH_FULL, LIST_PAGE_SIZE, Fetch, Format, ListOptions

JSON_RAW_LIMIT = 5 * 1024 * 1024  # above this, upload the RFC 822 bytes instead of base64 JSON
_METHOD_PREFIX = "gmail.users."
_ID_PLACEHOLDER = "connectoridplaceholder"  # unreserved characters: left as-is in the URI
_MAX_TEMPLATES = 64


class Method(StrEnum):
    """Gmail methods the client calls (discovery ids without the "gmail.users." prefix)."""

    GET_PROFILE = "getProfile"
    LABELS_LIST = "labels.list"
    MESSAGES_LIST = "messages.list"
    MESSAGES_GET = "messages.get"
    MESSAGES_SEND = "messages.send"
    ATTACHMENTS_GET = "messages.attachments.get"
    THREADS_GET = "threads.get"
    DRAFTS_LIST = "drafts.list"
    DRAFTS_GET = "drafts.get"
    DRAFTS_CREATE = "drafts.create"
    DRAFTS_UPDATE = "drafts.update"
    DRAFTS_DELETE = "drafts.delete"
    DRAFTS_SEND = "drafts.send"
    HISTORY_LIST = "history.list"
    WATCH = "watch"
    STOP = "stop"
    LABELS_CREATE = "labels.create"
    LABELS_PATCH = "labels.patch"
    LABELS_DELETE = "labels.delete"
    MESSAGES_MODIFY = "messages.modify"
    MESSAGES_BATCH_MODIFY = "messages.batchModify"
    MESSAGES_TRASH = "messages.trash"
    MESSAGES_UNTRASH = "messages.untrash"
    THREADS_LIST = "threads.list"
    THREADS_MODIFY = "threads.modify"
    THREADS_TRASH = "threads.trash"
    THREADS_UNTRASH = "threads.untrash"
    SEND_AS_LIST = "settings.sendAs.list"
    VACATION_GET = "settings.getVacation"
    VACATION_UPDATE = "settings.updateVacation"


# Calls whose repetition could create a second message, draft or label: never retried blindly.
NON_IDEMPOTENT = frozenset(
    {Method.MESSAGES_SEND, Method.DRAFTS_SEND, Method.DRAFTS_CREATE, Method.LABELS_CREATE}
)
# Calls Gmail's mail-sending limit applies to.
SENDING = frozenset({Method.MESSAGES_SEND, Method.DRAFTS_SEND})

Decoder = Callable[[int, bytes], Any]


def _listing(max_results: int, **optional: Any) -> dict[str, Any]:
    """A list call's parameters: the optional ones only when set (empty, False and None mean
    Gmail's default), in the order given, which is the order of the request URI's query."""
    return {"userId": "me", "maxResults": max_results, **{k: v for k, v in optional.items() if v}}


def _filtered_listing(options: ListOptions, **optional: Any) -> dict[str, Any]:
    """A messages or threads list call's parameters, from the listing options."""
    return _listing(
        options.get("max_results", LIST_PAGE_SIZE),
        q=options.get("query"),
        labelIds=list(options.get("label_ids", ())),
        pageToken=options.get("page_token"),
        **optional,
    )


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: Method
    http: HttpCall
    decode: Decoder  # the library's postproc for a 2xx answer

    @property
    def idempotent(self) -> bool:
        return self.method not in NON_IDEMPOTENT


class _NoNetwork:
    """Handed to `build` so that nothing built here can ever reach the network by itself."""

    def request(self, *_args: object, **_kwargs: object) -> object:
        raise RuntimeError("Gmail requests are sent by connector.gmail's async transport")


def _decoder(postproc: Callable[[httplib2.Response, bytes], Any]) -> Decoder:
    def decode(status: int, body: bytes) -> Any:
        result = postproc(httplib2.Response({"status": str(status)}), body)
        if result in ("", b""):  # methods without a response schema (drafts.delete)
            return {}
        if isinstance(result, str | bytes):  # the library hands back undecodable bodies as text
            raise NetworkError("Gmail answered with a body that is not JSON", request_sent=True)
        return result

    return decode


def _rfc822_upload(raw: bytes) -> MediaInMemoryUpload:
    return MediaInMemoryUpload(raw, mimetype="message/rfc822", resumable=False)


def _raw_b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


class CallFactory:
    """Builds `ApiCall`s for one API endpoint, e.g. Google's or the emulator's base URL."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        parts = urlsplit(self.endpoint)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        service = build(
            "gmail",
            "v1",
            http=_NoNetwork(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.endpoint},
        )
        users = service.users()
        self._users = users
        self._messages = users.messages()
        self._attachments = self._messages.attachments()
        self._threads = users.threads()
        self._drafts = users.drafts()
        self._labels = users.labels()
        self._history = users.history()
        self._settings = users.settings()
        self._send_as = self._settings.sendAs()
        self._get_templates: dict[Fetch, ApiCall] = {}
        # The library targets Google's batch URL whatever the endpoint: derive ours.
        self.batch_uri = f"{self.endpoint}batch/gmail/v1"

    def _wrap(self, request: HttpRequest) -> ApiCall:
        method = Method(request.methodId.removeprefix(_METHOD_PREFIX))
        uri = request.uri
        parts = urlsplit(uri)
        if (parts.scheme, parts.netloc) != (self._scheme, self._netloc):
            # Media uploads come back as https://<host>/upload/...; keep the configured scheme.
            uri = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers: Mapping[str, str] = dict(request.headers)
        return ApiCall(
            method, HttpCall(request.method, uri, headers, body), _decoder(request.postproc)
        )

    # -- reads ---------------------------------------------------------------------------
    def get_profile(self) -> ApiCall:
        return self._wrap(self._users.getProfile(userId="me"))

    def list_labels(self) -> ApiCall:
        return self._wrap(self._labels.list(userId="me"))

    def watch(self, topic: str, label_ids: tuple[str, ...] = ()) -> ApiCall:
        body: dict[str, object] = {"topicName": topic}
        if label_ids:
            body |= {"labelIds": list(label_ids), "labelFilterBehavior": "include"}
        return self._wrap(self._users.watch(userId="me", body=body))

    def stop_watch(self) -> ApiCall:
        return self._wrap(self._users.stop(userId="me"))

    def list_messages(
        self, *, include_spam_trash: bool = False, **options: Unpack[ListOptions]
    ) -> ApiCall:
        listing = _filtered_listing(options, includeSpamTrash=include_spam_trash)
        return self._wrap(self._messages.list(**listing))

    def get_message(self, message_id: str, fetch: Fetch = FETCH_FULL) -> ApiCall:
        # Bulk reads build thousands of these: the library builds one template per
        # (format, headers) and only the quoted id differs, which is ~10x cheaper per call.
        template = self._get_templates.get(fetch)
        if template is None:
            kwargs: dict[str, Any] = {"userId": "me", "id": _ID_PLACEHOLDER, "format": fetch.format}
            if fetch.headers:
                kwargs["metadataHeaders"] = list(fetch.headers)
            template = self._wrap(self._messages.get(**kwargs))
            if len(self._get_templates) >= _MAX_TEMPLATES:
                self._get_templates.clear()
            self._get_templates[fetch] = template
        http = template.http
        uri = http.uri.replace(
            f"/messages/{_ID_PLACEHOLDER}?", f"/messages/{quote(message_id, safe='')}?", 1
        )
        return ApiCall(
            template.method, HttpCall(http.verb, uri, http.headers, None), template.decode
        )

    def get_attachment(self, message_id: str, attachment_id: str) -> ApiCall:
        return self._wrap(
            self._attachments.get(userId="me", messageId=message_id, id=attachment_id)
        )

    def get_thread(self, thread_id: str, *, fmt: Format = Format.FULL) -> ApiCall:
        return self._wrap(self._threads.get(userId="me", id=thread_id, format=fmt))

    def list_history(self, start_history_id: str, *, page_token: str | None = None) -> ApiCall:
        kwargs: dict[str, Any] = {
            "userId": "me",
            "startHistoryId": start_history_id,
            "maxResults": 500,
        }
        if page_token:
            kwargs["pageToken"] = page_token
        return self._wrap(self._history.list(**kwargs))

    def list_drafts(
        self, *, page_token: str | None = None, max_results: int = 100, query: str | None = None
    ) -> ApiCall:
        return self._wrap(self._drafts.list(**_listing(max_results, pageToken=page_token, q=query)))

    def get_draft(self, draft_id: str, *, fmt: Format = Format.FULL) -> ApiCall:
        return self._wrap(self._drafts.get(userId="me", id=draft_id, format=fmt))

    # -- writes --------------------------------------------------------------------------
    def _message_payload(
        self, raw: bytes, thread_id: str | None
    ) -> tuple[dict[str, Any], MediaInMemoryUpload | None]:
        """Small messages go as base64 JSON; large ones as an upload (no 4/3 base64 growth)."""
        meta: dict[str, Any] = {"threadId": thread_id} if thread_id else {}
        if len(raw) <= JSON_RAW_LIMIT:
            return {**meta, "raw": _raw_b64(raw)}, None
        return meta, _rfc822_upload(raw)

    def send_message(self, raw: bytes, thread_id: str | None) -> ApiCall:
        body, media = self._message_payload(raw, thread_id)
        kwargs: dict[str, Any] = {"userId": "me", "body": body or None}
        if media is not None:
            kwargs["media_body"] = media
        return self._wrap(self._messages.send(**kwargs))

    def create_draft(self, raw: bytes, thread_id: str | None) -> ApiCall:
        message, media = self._message_payload(raw, thread_id)
        kwargs: dict[str, Any] = {"userId": "me", "body": {"message": message}}
        if media is not None:
            kwargs["media_body"] = media
        return self._wrap(self._drafts.create(**kwargs))

    def update_draft(self, draft_id: str, raw: bytes, thread_id: str | None) -> ApiCall:
        message, media = self._message_payload(raw, thread_id)
        kwargs: dict[str, Any] = {
            "userId": "me",
            "id": draft_id,
            "body": {"id": draft_id, "message": message},
        }
        if media is not None:
            kwargs["media_body"] = media
        return self._wrap(self._drafts.update(**kwargs))

    def delete_draft(self, draft_id: str) -> ApiCall:
        return self._wrap(self._drafts.delete(userId="me", id=draft_id))

    def send_draft(self, draft_id: str) -> ApiCall:
        return self._wrap(self._drafts.send(userId="me", body={"id": draft_id}))

    # -- organizing: labels, label changes, trash (never a permanent delete) --------------
    def create_label(self, body: Mapping[str, Any]) -> ApiCall:
        return self._wrap(self._labels.create(userId="me", body=dict(body)))

    def patch_label(self, label_id: str, body: Mapping[str, Any]) -> ApiCall:
        return self._wrap(self._labels.patch(userId="me", id=label_id, body=dict(body)))

    def delete_label(self, label_id: str) -> ApiCall:
        return self._wrap(self._labels.delete(userId="me", id=label_id))

    def modify_message(self, message_id: str, add: Sequence[str], remove: Sequence[str]) -> ApiCall:
        body = _label_change(add, remove)
        return self._wrap(self._messages.modify(userId="me", id=message_id, body=body))

    def batch_modify(
        self, message_ids: Sequence[str], add: Sequence[str], remove: Sequence[str]
    ) -> ApiCall:
        body = {"ids": list(message_ids), **_label_change(add, remove)}
        return self._wrap(self._messages.batchModify(userId="me", body=body))

    def trash_message(self, message_id: str, *, undo: bool = False) -> ApiCall:
        method = self._messages.untrash if undo else self._messages.trash
        return self._wrap(method(userId="me", id=message_id))

    def list_threads(self, **options: Unpack[ListOptions]) -> ApiCall:
        return self._wrap(self._threads.list(**_filtered_listing(options)))

    def modify_thread(self, thread_id: str, add: Sequence[str], remove: Sequence[str]) -> ApiCall:
        body = _label_change(add, remove)
        return self._wrap(self._threads.modify(userId="me", id=thread_id, body=body))

    def trash_thread(self, thread_id: str, *, undo: bool = False) -> ApiCall:
        method = self._threads.untrash if undo else self._threads.trash
        return self._wrap(method(userId="me", id=thread_id))

    # -- settings ------------------------------------------------------------------------
    def list_send_as(self) -> ApiCall:
        return self._wrap(self._send_as.list(userId="me"))

    def get_vacation(self) -> ApiCall:
        return self._wrap(self._settings.getVacation(userId="me"))

    def update_vacation(self, body: Mapping[str, Any]) -> ApiCall:
        return self._wrap(self._settings.updateVacation(userId="me", body=dict(body)))


def _label_change(add: Sequence[str], remove: Sequence[str]) -> dict[str, list[str]]:
    body: dict[str, list[str]] = {}
    if add:
        body["addLabelIds"] = list(add)
    if remove:
        body["removeLabelIds"] = list(remove)
    return body


def encode_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
