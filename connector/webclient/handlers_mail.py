"""The owner's mail pages: inbox (search, labels, paging, unread), thread, the sanitized body
frame, attachment download, compose / reply / reply all / forward with attachments.

Reads are the API's plans on the gate with purpose `user_feature`; sending is `Inbox.send` with
the body the JSON route would have parsed (`routes_inbox.parse_draft`), so both validate alike.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from audit.vocab import Purpose
from connector.inbox.service import Draft
from connector.policy import AccessContext, plans
from connector.web.context import access_context, services
from connector.web.paging import cursor_in, page_tokens
from connector.web.routes_inbox import parse_draft
from connector.web.routing import caller_of
from connector.web.validation import (
    ATTACHMENT_ID,
    DRAFT_ID,
    GMAIL_ID,
    IDEMPOTENCY_KEY,
    LABEL_ID,
    account_id,
    check_id,
    path_id,
    query_text,
)
from connector.webclient.handlers_organize import OFFERED, user_labels
from connector.webclient.mailview import message_view, sanitize
from connector.webclient.pages import (
    ACC,
    Notice,
    form_of,
    form_text,
    page,
    redirect,
    render,
)
from connector.webclient.security import mail_policy

PAGE_SIZE = 25
# System labels offered as views; Gmail's ids, shown by name.
LABELS = {"INBOX": "Inbox", "UNREAD": "Unread", "STARRED": "Starred", "SENT": "Sent",
          "DRAFT": "Drafts", "SPAM": "Spam", "TRASH": "Trash"}  # fmt: skip
MODES = ("new", "reply", "reply_all", "forward")
_ADDRESS_SPLIT = re.compile(r"[,;]")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")


def _ctx(request: web.Request) -> AccessContext:
    return access_context(request, Purpose.USER_FEATURE)


def _message_id(request: web.Request) -> str:
    return path_id(request, "message_id", GMAIL_ID, "message id")


@page("GET", f"{ACC}/messages")
async def inbox(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    query = query_text(request, "q", max_len=500) or None  # an empty search box: no query
    label = request.query.get("label", "" if query else "INBOX")
    if label and label not in LABELS:
        check_id(label, LABEL_ID, "label")
    tokens = page_tokens(request, "messages", account)
    # The feed's position before the list is read: the page's live stream starts there, so
    # mail that lands before its EventSource connects still refreshes the rows.
    since = await services(request).feed.store.last_seq(account)
    result = await services(request).inbox.search(
        _ctx(request), account, query=query, label_ids=(label,) if label else (),
        page_token=cursor_in(request, tokens), max_results=PAGE_SIZE,
    )  # fmt: skip
    gmail_next = result.get("nextPageToken")
    rows = [message_view(m) for m in result.get("messages", [])]
    return render(request, "inbox.html", {
        "actions": OFFERED, "user_labels": await user_labels(request, account),
        "back": request.path_qs,
        "account_id": account, "rows": rows, "q": query or "", "label": label, "since": since,
        "labels": LABELS, "next": tokens.seal(gmail_next) if isinstance(gmail_next, str) else None,
        "title": LABELS.get(label, "Search") if not query else f"Search: {query}",
    })  # fmt: skip


@page("GET", f"{ACC}/threads/{{thread_id}}")
async def thread(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    thread_id = path_id(request, "thread_id", GMAIL_ID, "thread id")
    found = await services(request).gate.run(
        _ctx(request), plans.thread(account, thread_id, "full")
    )
    remote = set(request.query.getall("remote", []))
    shown = []
    for message in found.get("messages", []):
        view = message_view(message)
        blocked = 0
        if view.html is not None and view.id not in remote:
            blocked = sanitize(view.html, remote_allowed=False).blocked_remote
        shown.append((view, blocked, view.id in remote))
    subject = shown[0][0].header("subject") if shown else ""
    return render(request, "thread.html", {
        "account_id": account, "thread_id": thread_id, "messages": shown, "actions": OFFERED,
        "title": subject or "(no subject)",
    })  # fmt: skip


@page("GET", f"{ACC}/messages/{{message_id}}")
async def body(request: web.Request) -> web.StreamResponse:
    """One message's body as its own document, for a sandboxed frame (`security.mail_policy`)."""
    account, message_id = account_id(request), _message_id(request)
    found = await services(request).gate.run(
        _ctx(request), plans.message(account, message_id, "full")
    )
    view = message_view(found)
    # Remote content only when the client's own page asked for it: a link from elsewhere that
    # adds remote=1 must not fire a sender's tracking pixel.
    same_origin = request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"
    remote = request.query.get("remote") == "1" and same_origin
    html = None if view.html is None else sanitize(view.html, remote_allowed=remote).html
    response = aiohttp_jinja2.render_template(
        "mailbody.html", request, {"html": html, "text": view.text}
    )
    response.headers["Content-Security-Policy"] = mail_policy(remote)
    return response


def _download_name(name: str) -> str:
    ascii_name = _SAFE_NAME.sub("_", name)[:120] or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name[:200])}"


@page("GET", f"{ACC}/messages/{{message_id}}/attachments/{{attachment_id}}")
async def attachment(request: web.Request) -> web.StreamResponse:
    """Always a download, never rendered: octet-stream, attachment disposition, nosniff."""
    account, message_id = account_id(request), _message_id(request)
    attachment_id = path_id(request, "attachment_id", ATTACHMENT_ID, "attachment id")
    chunks = await services(request).gate.stream(
        _ctx(request), plans.attachment(account, message_id, attachment_id)
    )
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": _download_name(request.query.get("name", "attachment")),
    })  # fmt: skip
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


# -- compose ----------------------------------------------------------------------------------


def _addresses(value: str) -> list[str]:
    return [a.strip() for a in _ADDRESS_SPLIT.split(value) if a.strip()]


def _prefill(mode: str, original: Any, me: str) -> dict[str, str]:
    view = message_view(original)
    subject = view.header("subject")
    if mode == "forward":
        return {"subject": subject if subject.lower().startswith("fwd:") else f"Fwd: {subject}"}
    sender = view.header("reply-to") or view.header("from")
    to = [sender]
    cc: list[str] = []
    if mode == "reply_all":
        mine = me.lower()
        to += [a for a in _addresses(view.header("to")) if mine not in a.lower()]
        cc = [a for a in _addresses(view.header("cc")) if mine not in a.lower()]
    subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    return {"to": ", ".join(to), "cc": ", ".join(cc), "subject": subject}


@page("GET", f"{ACC}/messages/{{message_id}}")
async def compose(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    mode = request.query.get("mode", "new")
    mode = mode if mode in MODES else "new"
    original = request.query.get("message_id")
    fields: dict[str, str] = {}
    if mode != "new" and original is not None:
        check_id(original, GMAIL_ID, "message id")
        found = await services(request).gate.run(
            _ctx(request), plans.message(account, original, "metadata")
        )
        linking = services(request).accounts.linking
        me = ""
        if linking is not None:
            status = await linking.status(caller_of(request).sub, account)
            me = str(status.get("email") or "")
        fields = _prefill(mode, found, me)
    else:
        mode, original = "new", None
    return render(request, "compose.html", {
        "account_id": account, "mode": mode, "original": original, "fields": fields,
        "send_key": secrets.token_urlsafe(24), "title": "New message" if mode == "new" else
        {"reply": "Reply", "reply_all": "Reply all", "forward": "Forward"}[mode],
    })  # fmt: skip


async def _attachments(request: web.Request) -> list[dict[str, str]]:
    out = []
    for item in form_of(request).getall("attachments", []):
        if isinstance(item, web.FileField) and item.filename:
            data = item.file.read()
            out.append({"filename": item.filename,
                        "mime_type": item.content_type or "application/octet-stream",
                        "content_base64": base64.b64encode(data).decode("ascii")})  # fmt: skip
    return out


def form_draft(
    request: web.Request, attachments: list[dict[str, str]]
) -> tuple[Draft, str | None, str | None]:
    """The compose form as the JSON API's body, parsed by the API's own parser: the draft, the
    message it replies to, the message it forwards."""
    mode = form_text(request, "mode", 16)
    original = form_text(request, "original", 64) or None
    data: dict[str, Any] = {
        "to": _addresses(form_text(request, "to", 4000)),
        "cc": _addresses(form_text(request, "cc", 4000)),
        "bcc": _addresses(form_text(request, "bcc", 4000)),
        "subject": form_text(request, "subject", 998),
        "text": str(form_of(request).get("text", ""))[:1_000_000],
        "attachments": attachments,
    }
    if mode in ("reply", "reply_all") and original:
        data["reply_to"] = original
    if mode == "forward" and original:
        data["forward_of"] = original
    draft, reply_to, ids = parse_draft(data, extra=frozenset({"forward_of"}))
    return draft, reply_to, ids["forward_of"]


@page("POST", f"{ACC}/messages/send", change=True)
async def send(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    draft, reply_to, forward_of = form_draft(request, await _attachments(request))
    key = form_text(request, "send_key", 128)
    once = await services(request).inbox.send_once(
        _ctx(request), account, draft, reply_to=reply_to, forward_of=forward_of,
        idempotency_key=key if IDEMPOTENCY_KEY.fullmatch(key) else None,
    )  # fmt: skip
    sent = once.result
    autosaved = form_text(request, "draft_id", 32)
    if DRAFT_ID.fullmatch(autosaved):  # sent: the autosaved copy is no longer wanted
        await services(request).gate.run(_ctx(request), plans.draft_delete(account, autosaved))
    where = f"/app/accounts/{account}/threads/{sent['threadId']}" if sent.get("threadId") else (
        f"/app/accounts/{account}/inbox")  # fmt: skip
    return redirect(f"{where}?notice={Notice.SENT}")


@page("POST", f"{ACC}/drafts", change=True)
async def autosave(request: web.Request) -> web.StreamResponse:
    """The compose form saved as a Gmail draft while the user types (htmx, every few seconds
    of quiet): created once, then replaced; answers the fragment that remembers its id."""
    account = account_id(request)
    draft, reply_to, _ = form_draft(request, [])
    inbox = services(request).inbox
    draft_id = form_text(request, "draft_id", 32)
    if DRAFT_ID.fullmatch(draft_id):
        await inbox.update_draft(_ctx(request), account, draft_id, draft, reply_to=reply_to)
    else:
        key = form_text(request, "send_key", 128)
        made = await inbox.create_draft(
            _ctx(request), account, draft, reply_to=reply_to,
            idempotency_key=f"draft-{key}" if IDEMPOTENCY_KEY.fullmatch(key) else None,
        )  # fmt: skip
        draft_id = str(made.result["id"])
    saved = services(request).clock().strftime("%H:%M:%S")
    return aiohttp_jinja2.render_template(
        "draft_saved.html", request, {"draft_id": draft_id, "saved": saved}
    )
