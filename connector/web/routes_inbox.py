"""The owner's inbox: list/search, read, threads, attachments, drafts, send. Role `user` only;
every call goes through the gate with purpose `user_feature`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from audit.vocab import Purpose
from connector.gmail import errors as g
from connector.inbox.once import Once
from connector.inbox.service import Draft
from connector.mime import Attachment
from connector.policy import AccessContext, plans
from connector.web import schemas as s
from connector.web.components import ref
from connector.web.context import access_context, services
from connector.web.paging import (
    PageTokens,
    cursor_in,
    page_params,
    page_size,
    page_tokens,
    seal_next,
)
from connector.web.problems import ProblemError, ProblemType
from connector.web.routing import USER, QueryParam, RouteSpec
from connector.web.validation import (
    ATTACHMENT_ID,
    DRAFT_ID,
    GMAIL_ID,
    IDEMPOTENCY_KEY,
    LABEL_ID,
    Fields,
    account_id,
    check_header_value,
    check_id,
    path_id,
    query_choice,
    query_text,
    read_json,
)

READ_FORMATS = ("full", "metadata", "minimal", "raw")
THREAD_FORMATS = ("full", "metadata", "minimal")  # Gmail has no raw threads
GMAIL_PAGE, GMAIL_MAX_PAGE = 25, 100  # Gmail lists at most 500; metadata for 100 is one batch
_DRAFT_FIELDS = {"to", "cc", "bcc", "subject", "text", "html", "attachments", "reply_to"}


def _ctx(request: web.Request) -> Any:
    return access_context(request, Purpose.USER_FEATURE)


def _message_id(request: web.Request) -> str:
    return path_id(request, "message_id", GMAIL_ID, "message id")


def _draft_id(request: web.Request) -> str:
    return path_id(request, "draft_id", DRAFT_ID, "draft id")


def _attachments(fields: Fields) -> tuple[Attachment, ...]:
    raw = fields.raw("attachments")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        fields.bad("attachments", "expected a list of at most 100 objects")
        return ()
    out: list[Attachment] = []
    for i, item in enumerate(raw):
        name = f"attachments[{i}]"
        if not isinstance(item, dict) or set(item) - {"filename", "mime_type", "content_base64"}:
            fields.bad(name, "expected {filename, mime_type, content_base64}")
            continue
        filename = item.get("filename")
        mime = item.get("mime_type", "application/octet-stream")
        content = item.get("content_base64")
        if not (isinstance(filename, str) and isinstance(mime, str) and isinstance(content, str)):
            fields.bad(name, "filename, mime_type and content_base64 are strings")
            continue
        check_header_value(f"{name}.filename", filename)
        check_header_value(f"{name}.mime_type", mime)
        try:
            data = base64.b64decode(content.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            fields.bad(f"{name}.content_base64", "not valid base64")
            continue
        out.append(Attachment(filename=filename, content=data, mime_type=mime))
    return tuple(out)


def parse_draft(
    data: Mapping[str, Any], *, extra: frozenset[str] = frozenset()
) -> tuple[Draft, str | None, dict[str, str | None]]:
    """The draft, the message it replies to, and any `extra` id fields (e.g. forward_of)."""
    fields = Fields(data, _DRAFT_FIELDS | extra)
    to, cc, bcc = fields.strings("to"), fields.strings("cc"), fields.strings("bcc")
    subject = fields.string("subject", max_len=998)
    for name, values in (("to", to), ("cc", cc), ("bcc", bcc), ("subject", (subject,))):
        for header in values:
            check_header_value(name, header)
    text = fields.optional_string("text", max_len=40_000_000)
    html = fields.optional_string("html", max_len=40_000_000)
    attachments = _attachments(fields)
    ids = {name: fields.optional_string(name, max_len=64) for name in ("reply_to", *extra)}
    fields.done()
    for name, value in ids.items():
        if value is not None:
            check_id(value, GMAIL_ID, name)
    draft = Draft(to=to, cc=cc, bcc=bcc, subject=subject, text=text, html=html,
                  attachments=attachments)  # fmt: skip
    return draft, ids.pop("reply_to"), ids


# -- reading --------------------------------------------------------------------------------


def _gmail_page(page: Mapping[str, Any], key: str, tokens: PageTokens) -> dict[str, Any]:
    """Gmail's list page in the service's shape: the items (always present), the sealed
    next_page_token (null on the last page) and Gmail's result_size_estimate."""
    gmail_next = page.get("nextPageToken")
    return {
        key: list(page.get(key) or []),
        "next_page_token": seal_next(tokens, gmail_next if isinstance(gmail_next, str) else None),
        "result_size_estimate": int(page.get("resultSizeEstimate") or 0),
    }


async def list_messages(request: web.Request) -> web.Response:
    account = account_id(request)
    labels = tuple(check_id(v, LABEL_ID, "label") for v in request.query.getall("label", []))
    tokens = page_tokens(request, "messages", account)
    detail = query_choice(request, "format", ("metadata", "ids"), "metadata")
    page = await services(request).inbox.search(
        _ctx(request), account, query=query_text(request, "q"), label_ids=labels,
        page_token=cursor_in(request, tokens),
        max_results=page_size(request, default=GMAIL_PAGE, high=GMAIL_MAX_PAGE),
        with_metadata=detail == "metadata",
    )  # fmt: skip
    return web.json_response(_gmail_page(page, "messages", tokens))


async def get_message(request: web.Request) -> web.Response:
    account, message = account_id(request), _message_id(request)
    fmt = query_choice(request, "format", READ_FORMATS, "full")
    return web.json_response(
        await services(request).gate.run(_ctx(request), plans.message(account, message, fmt))
    )


async def get_thread(request: web.Request) -> web.Response:
    account = account_id(request)
    thread = path_id(request, "thread_id", GMAIL_ID, "thread id")
    fmt = query_choice(request, "format", THREAD_FORMATS, "full")
    return web.json_response(
        await services(request).gate.run(_ctx(request), plans.thread(account, thread, fmt))
    )


async def stream_chunks(request: web.Request, chunks: Any) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream",
                                           "Content-Disposition": "attachment"})  # fmt: skip
    started = False
    async for chunk in chunks:
        if not started:
            await response.prepare(request)
            started = True
        await response.write(chunk)
    if not started:
        await response.prepare(request)
    await response.write_eof()
    return response


async def stream_attachment(
    request: web.Request, ctx: AccessContext, plan: plans.Plan[AsyncIterator[bytes]]
) -> web.StreamResponse:
    """The attachment, streamed. Gmail answers an attachment id that is not one of the message's
    with 400 "Invalid attachment token": the caller's id, so 404 here, not 502 gmail-rejected."""
    try:
        return await stream_chunks(request, await services(request).gate.stream(ctx, plan))
    except g.InvalidRequestError:
        raise ProblemError(
            ProblemType.NOT_FOUND, "this message has no attachment with that id"
        ) from None


async def get_attachment(request: web.Request) -> web.StreamResponse:
    account, message = account_id(request), _message_id(request)
    attachment = path_id(request, "attachment_id", ATTACHMENT_ID, "attachment id")
    return await stream_attachment(
        request, _ctx(request), plans.attachment(account, message, attachment)
    )


# -- drafts ---------------------------------------------------------------------------------


async def list_drafts(request: web.Request) -> web.Response:
    account = account_id(request)
    tokens = page_tokens(request, "drafts", account)
    page = await services(request).gate.run(_ctx(request), plans.draft_list(
        account, page_token=cursor_in(request, tokens),
        max_results=page_size(request, default=GMAIL_PAGE, high=GMAIL_MAX_PAGE),
    ))  # fmt: skip
    return web.json_response(_gmail_page(page, "drafts", tokens))


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise ProblemError(
            ProblemType.MALFORMED_REQUEST,
            "Idempotency-Key must be 8-128 characters of letters, digits and '_.:-'",
        )
    return key


def _answer(once: Once, *, status: int = 200, location: str | None = None) -> web.Response:
    """The JSON answer; a replay says so (`Idempotent-Replayed: true`, as Stripe and others do)."""
    headers = {"Idempotent-Replayed": "true"} if once.replayed else {}
    if location is not None:
        headers["Location"] = location
    return web.json_response(once.result, status=status, headers=headers)


async def create_draft(request: web.Request) -> web.Response:
    account = account_id(request)
    key = _idempotency_key(request)
    draft, reply_to, _ = parse_draft(await read_json(request))
    once = await services(request).inbox.create_draft(
        _ctx(request), account, draft, reply_to=reply_to, idempotency_key=key
    )
    location = f"/v1/accounts/{account}/drafts/{once.result['id']}"
    return _answer(once, status=201, location=location)


async def get_draft(request: web.Request) -> web.Response:
    account, draft_id = account_id(request), _draft_id(request)
    return web.json_response(
        await services(request).gate.run(_ctx(request), plans.draft(account, draft_id))
    )


async def update_draft(request: web.Request) -> web.Response:
    account, draft_id = account_id(request), _draft_id(request)
    draft, reply_to, _ = parse_draft(await read_json(request))
    result = await services(request).inbox.update_draft(
        _ctx(request), account, draft_id, draft, reply_to=reply_to
    )
    return web.json_response(result)


async def delete_draft(request: web.Request) -> web.Response:
    account, draft_id = account_id(request), _draft_id(request)
    await services(request).gate.run(_ctx(request), plans.draft_delete(account, draft_id))
    return web.Response(status=204)


async def send_draft(request: web.Request) -> web.Response:
    account, draft_id = account_id(request), _draft_id(request)
    key = _idempotency_key(request)
    return _answer(
        await services(request).inbox.send_draft(
            _ctx(request), account, draft_id, idempotency_key=key
        )
    )


async def send_message(request: web.Request) -> web.Response:
    account = account_id(request)
    key = _idempotency_key(request)
    draft, reply_to, ids = parse_draft(await read_json(request), extra=frozenset({"forward_of"}))
    if reply_to is not None and ids["forward_of"] is not None:
        raise ProblemError(ProblemType.VALIDATION_FAILED, "send a reply or a forward, not both")
    once = await services(request).inbox.send_once(
        _ctx(request), account, draft, reply_to=reply_to, forward_of=ids["forward_of"],
        idempotency_key=key,
    )  # fmt: skip
    return _answer(once)


_ACC = "/v1/accounts/{account_id}"
_PAGE = page_params(default=GMAIL_PAGE, high=GMAIL_MAX_PAGE)
_FMT = QueryParam("format", {"enum": list(READ_FORMATS)}, "Gmail format (default full)")
_THREAD_FMT = QueryParam("format", {"enum": list(THREAD_FORMATS)}, "Gmail format (default full)")
_IDEM_TEXT = (
    "retries with the same key do the work once: the first answer is replayed for 24 h (marked "
    "Idempotent-Replayed: true); 409 idempotency-key-in-use while it still runs, 422 "
    "idempotency-key-reused for another request"
)
_IDEM = {
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern},
                    "description": _IDEM_TEXT}],
    "response_headers": {"Idempotent-Replayed": {
        "description": "true when this is the answer of an earlier request with the same key",
        "schema": {"type": "string", "enum": ["true"]}}},
}  # fmt: skip

ROUTES = [
    RouteSpec("GET", f"{_ACC}/messages", list_messages, "List or search messages", "inbox", USER,
              response=s.MESSAGE_PAGE, errors=(400, 403, 404, 409, 422, 429, 503),
              query=(QueryParam("q", {"type": "string"}, "Gmail search query"),
                     QueryParam("label", {"type": "string"}, "label id (repeatable)"),
                     QueryParam("format", {"enum": ["metadata", "ids"]},
                                "metadata headers (default) or ids only"), *_PAGE)),
    RouteSpec("GET", f"{_ACC}/messages/{{message_id}}", get_message, "Read a message", "inbox",
              USER, response=ref("Message"), query=(_FMT,),
              errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("GET", f"{_ACC}/threads/{{thread_id}}", get_thread, "Read a thread", "inbox", USER,
              response=ref("Thread"), query=(_THREAD_FMT,),
              errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("GET", f"{_ACC}/messages/{{message_id}}/attachments/{{attachment_id}}",
              get_attachment, "Download an attachment (streamed)", "inbox", USER,
              response_type="application/octet-stream", errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("GET", f"{_ACC}/drafts", list_drafts, "List drafts", "drafts", USER,
              response=s.DRAFT_PAGE, query=_PAGE, errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("POST", f"{_ACC}/drafts", create_draft, "Create a draft (new or reply)", "drafts",
              USER, status=201, request=s.DRAFT, response=ref("Draft"), extra=_IDEM,
              errors=(400, 403, 404, 409, 413, 415, 422, 429, 503)),
    RouteSpec("GET", f"{_ACC}/drafts/{{draft_id}}", get_draft, "Read a draft", "drafts", USER,
              response=ref("Draft"), errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("PUT", f"{_ACC}/drafts/{{draft_id}}", update_draft, "Replace a draft", "drafts",
              USER, request=s.DRAFT, response=ref("Draft"),
              errors=(400, 403, 404, 409, 413, 415, 422, 429, 503)),
    RouteSpec("DELETE", f"{_ACC}/drafts/{{draft_id}}", delete_draft, "Delete a draft", "drafts",
              USER, status=204, errors=(400, 403, 404, 409, 429, 503)),
    RouteSpec("POST", f"{_ACC}/drafts/{{draft_id}}/send", send_draft, "Send a draft", "drafts",
              USER, response=ref("SentMessage"), extra=_IDEM,
              errors=(400, 403, 404, 409, 422, 429, 502, 503)),
    RouteSpec("POST", f"{_ACC}/messages/send", send_message,
              "Send a new message, a reply or a forward (exactly once)", "inbox", USER,
              request=s.SEND, response=ref("SentMessage"), extra=_IDEM,
              errors=(400, 403, 404, 409, 413, 415, 422, 429, 502, 503)),
]  # fmt: skip
