"""Organizing the owner's mail and his mail settings (issue #14). Role `user` only; every call
goes through the gate with purpose `user_feature` and is audited.

Organize (labels, archive, read/unread, star, important, spam, trash) needs the `organize`
feature (gmail.modify); settings (send-as addresses and signatures, vacation responder) the
`settings` feature (gmail.settings.basic). Both are off by default: a call without the scope
answers 403 `scope-not-granted` naming the feature, the scope and how to grant it, checked after
the policy decision is recorded and before Gmail is called (Gmail's own 403 maps the same way).
There is no permanent delete: it needs https://mail.google.com/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from aiohttp import web

from audit.vocab import Purpose
from connector.accounts.scopes import Feature, check_feature
from connector.gmail.errors import InvalidRequestError, PermissionDeniedError
from connector.policy import plans
from connector.policy import plans_organize as organize
from connector.policy.access import AccessContext
from connector.policy.plans import Plan
from connector.ports import GmailJson, MailboxPort
from connector.web import schemas as s
from connector.web.context import access_context, services
from connector.web.handler_types import Handler
from connector.web.paging import cursor_in, page_params, page_size, page_tokens, seal_next
from connector.web.problems import ProblemError, ProblemType
from connector.web.routing import USER, QueryParam, RouteSpec
from connector.web.validation import (
    GMAIL_ID,
    LABEL_ID,
    Fields,
    account_id,
    check_id,
    path_id,
    query_text,
    read_json,
)

T = TypeVar("T")
P = ParamSpec("P")
_PAGE, _MAX_PAGE = 25, 100  # threads per page: default and most
MAX_LABEL_CHANGES = 100  # label ids per modify (Gmail has no lower cap; this bounds the record)


class LabelAction(StrEnum):
    """Shorthands for the label changes a mail client offers; each is an add or a remove."""

    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    READ = "read"
    UNREAD = "unread"
    STAR = "star"
    UNSTAR = "unstar"
    IMPORTANT = "important"
    NOT_IMPORTANT = "not_important"
    SPAM = "spam"
    NOT_SPAM = "not_spam"


# action -> (labels added, labels removed). Reporting spam also takes the mail out of the inbox.
_ACTIONS: Mapping[LabelAction, tuple[tuple[str, ...], tuple[str, ...]]] = {
    LabelAction.ARCHIVE: ((), ("INBOX",)),
    LabelAction.UNARCHIVE: (("INBOX",), ()),
    LabelAction.READ: ((), ("UNREAD",)),
    LabelAction.UNREAD: (("UNREAD",), ()),
    LabelAction.STAR: (("STARRED",), ()),
    LabelAction.UNSTAR: ((), ("STARRED",)),
    LabelAction.IMPORTANT: (("IMPORTANT",), ()),
    LabelAction.NOT_IMPORTANT: ((), ("IMPORTANT",)),
    LabelAction.SPAM: (("SPAM",), ("INBOX",)),
    LabelAction.NOT_SPAM: (("INBOX",), ("SPAM",)),
}
_ACTION_NAMES = frozenset(a.value for a in LabelAction)


def _ctx(request: web.Request) -> AccessContext:
    return access_context(request, Purpose.USER_FEATURE)


async def _run(request: web.Request, feature: Feature, plan: Plan[T]) -> T:
    """Run `plan` through the gate; the feature's scope is checked once the decision is
    recorded and before Gmail is called, so a missing scope is a recorded, clear refusal."""
    tokens = services(request).accounts.token_source
    inner = plan.call

    async def call(mailbox: MailboxPort, query: str | None) -> T:
        token = await tokens.access_token(plan.account_id)
        check_feature(plan.account_id, feature, token.scopes)
        try:
            return await inner(mailbox, query)
        except PermissionDeniedError:  # Gmail itself says the scope is missing
            check_feature(plan.account_id, feature, ())
            raise

    return await services(request).gate.run(_ctx(request), replace(plan, call=call))


def _label_ids(fields: Fields, name: str) -> tuple[str, ...]:
    values = fields.strings(name, max_items=MAX_LABEL_CHANGES, max_len=64)
    for value in values:
        if not LABEL_ID.fullmatch(value):
            fields.bad(name, f"{value[:64]!r} is not a label id")
    return values


def _changes(fields: Fields) -> tuple[list[str], list[str]]:
    """(added, removed) from `add_label_ids`, `remove_label_ids` and `actions`."""
    add = list(_label_ids(fields, "add_label_ids"))
    remove = list(_label_ids(fields, "remove_label_ids"))
    for raw in fields.strings("actions", max_items=len(LabelAction), max_len=32):
        if raw not in _ACTION_NAMES:
            fields.bad("actions", f"must be among {', '.join(LabelAction)}")
            continue
        plus, minus = _ACTIONS[LabelAction(raw)]
        add += plus
        remove += minus
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    if set(add) & set(remove):
        fields.bad("add_label_ids", "a label cannot be added and removed at once")
    if not add and not remove:
        fields.bad("actions", "name at least one label change")
    return add, remove


_CHANGE_FIELDS = {"add_label_ids", "remove_label_ids", "actions"}


# -- messages and threads -------------------------------------------------------------------


def _message_id(request: web.Request) -> str:
    return path_id(request, "message_id", GMAIL_ID, "message id")


def _thread_id(request: web.Request) -> str:
    return path_id(request, "thread_id", GMAIL_ID, "thread id")


IdOf = Callable[[web.Request], str]
ModifyPlan = Callable[[str, str, Sequence[str], Sequence[str]], Plan[GmailJson]]


class TrashPlan(Protocol):
    def __call__(self, account_id: str, target_id: str, /, *, undo: bool) -> Plan[GmailJson]: ...


async def batch_modify(request: web.Request) -> web.Response:
    account = account_id(request)
    fields = Fields(await read_json(request), _CHANGE_FIELDS | {"ids"})
    ids = fields.strings("ids", max_items=organize.BATCH_MODIFY_MAX, max_len=16)
    if not ids:
        fields.bad("ids", "name 1 to 1000 message ids")
    for value in ids:
        if not GMAIL_ID.fullmatch(value):
            fields.bad("ids", f"{value[:16]!r} is not a message id")
            break
    add, remove = _changes(fields)
    fields.done()
    made = organize.batch_modify(account, list(ids), add, remove)
    for plan in made:
        await _run(request, Feature.ORGANIZE, plan)
    return web.json_response({"modified": len(set(ids)), "gmail_calls": len(made)})


async def list_threads(request: web.Request) -> web.Response:
    account = account_id(request)
    labels = tuple(check_id(v, LABEL_ID, "label") for v in request.query.getall("label", []))
    tokens = page_tokens(request, "threads", account)
    plan = organize.thread_list(
        account, query=query_text(request, "q"), label_ids=labels,
        page_token=cursor_in(request, tokens),
        max_results=page_size(request, default=_PAGE, high=_MAX_PAGE),
    )  # fmt: skip
    found: GmailJson = await _run(request, Feature.READ, plan)
    gmail_next = found.get("nextPageToken")
    # The service's list shape: items always present, sealed next_page_token (null at the end)
    return web.json_response({
        "threads": list(found.get("threads") or []),
        "next_page_token": seal_next(tokens, gmail_next if isinstance(gmail_next, str) else None),
        "result_size_estimate": int(found.get("resultSizeEstimate") or 0),
    })  # fmt: skip


# Messages and threads take the same two label writes, each with its own id and plan. The
# handlers are made from one body each; the name given is the OpenAPI operationId (and the one
# the route policy and logs show), as a def's would be.
async def _modify(request: web.Request, target_id: IdOf, plan_of: ModifyPlan) -> web.Response:
    account, target = account_id(request), target_id(request)
    fields = Fields(await read_json(request), _CHANGE_FIELDS)
    add, remove = _changes(fields)
    fields.done()
    plan = plan_of(account, target, add, remove)
    return web.json_response(await _run(request, Feature.ORGANIZE, plan))


async def _trash(
    request: web.Request, target_id: IdOf, plan_of: TrashPlan, *, undo: bool
) -> web.Response:
    plan = plan_of(account_id(request), target_id(request), undo=undo)
    return web.json_response(await _run(request, Feature.ORGANIZE, plan))


def _named(
    name: str,
    body: Callable[Concatenate[web.Request, P], Awaitable[web.Response]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return await body(request, *args, **kwargs)

    handler.__name__ = handler.__qualname__ = name
    return handler


modify_message = _named("modify_message", _modify, _message_id, organize.message_modify)
trash_message = _named("trash_message", _trash, _message_id, organize.message_trash, undo=False)
untrash_message = _named("untrash_message", _trash, _message_id, organize.message_trash, undo=True)
modify_thread = _named("modify_thread", _modify, _thread_id, organize.thread_modify)
trash_thread = _named("trash_thread", _trash, _thread_id, organize.thread_trash, undo=False)
untrash_thread = _named("untrash_thread", _trash, _thread_id, organize.thread_trash, undo=True)


# -- labels ---------------------------------------------------------------------------------

_VISIBILITY = {
    "message_list_visibility": ("messageListVisibility", ("show", "hide")),
    "label_list_visibility": (
        "labelListVisibility",
        ("labelShow", "labelShowIfUnread", "labelHide"),
    ),
}


def _label_body(fields: Fields, *, required: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    name = fields.string("name", required=required, max_len=225)
    if name:
        if any(ord(c) < 32 for c in name):
            fields.bad("name", "must not contain control characters")
        body["name"] = name.strip()
    for ours, (theirs, choices) in _VISIBILITY.items():
        value = fields.choice(ours, choices, required=False)
        if value:
            body[theirs] = value
    if not body:
        fields.bad("name", "name at least one change")
    fields.done()
    return body


def _label_id(request: web.Request) -> str:
    return path_id(request, "label_id", LABEL_ID, "label id")


async def _label_write(request: web.Request, plan: Plan[T]) -> T:
    """A label Gmail refuses is the caller's to fix: a taken name is 409, a system label or a
    bad name 422, instead of the generic 502 for a request Gmail rejects."""
    try:
        return await _run(request, Feature.ORGANIZE, plan)
    except InvalidRequestError as exc:
        if exc.status == 409:
            raise ProblemError(ProblemType.CONFLICT, "a label with this name exists") from exc
        raise ProblemError(ProblemType.VALIDATION_FAILED, exc.message) from exc


async def list_labels(request: web.Request) -> web.Response:
    plan = plans.labels(account_id(request))
    return web.json_response(await _run(request, Feature.READ, plan))


async def create_label(request: web.Request) -> web.Response:
    account = account_id(request)
    body = _label_body(Fields(await read_json(request), {"name", *_VISIBILITY}), required=True)
    plan = organize.label_create(account, body)
    return web.json_response(await _label_write(request, plan), status=201)


async def update_label(request: web.Request) -> web.Response:
    account, label = account_id(request), _label_id(request)
    body = _label_body(Fields(await read_json(request), {"name", *_VISIBILITY}), required=False)
    plan = organize.label_update(account, label, body)
    return web.json_response(await _label_write(request, plan))


async def delete_label(request: web.Request) -> web.Response:
    account, label = account_id(request), _label_id(request)
    await _label_write(request, organize.label_delete(account, label))
    return web.Response(status=204)


# -- settings -------------------------------------------------------------------------------

_VACATION_FLAGS = {"enable_auto_reply": "enableAutoReply",
                   "restrict_to_contacts": "restrictToContacts",
                   "restrict_to_domain": "restrictToDomain"}  # fmt: skip
_VACATION_TEXTS = {"response_subject": ("responseSubject", 998),
                   "response_body_plain_text": ("responseBodyPlainText", 100_000),
                   "response_body_html": ("responseBodyHtml", 100_000)}  # fmt: skip


def _vacation_body(data: Mapping[str, Any]) -> dict[str, Any]:
    fields = Fields(data, {*_VACATION_FLAGS, *_VACATION_TEXTS, "start_time", "end_time"})
    body: dict[str, Any] = {
        theirs: fields.boolean(ours) for ours, theirs in _VACATION_FLAGS.items()
    }
    for ours, (theirs, limit) in _VACATION_TEXTS.items():
        value = fields.optional_string(ours, max_len=limit)
        if value is not None:
            body[theirs] = value
    for ours, theirs in (("start_time", "startTime"), ("end_time", "endTime")):
        when = fields.timestamp(ours)
        if when is not None:
            body[theirs] = str(int(when.timestamp() * 1000))
    fields.done()
    return body


async def list_send_as(request: web.Request) -> web.Response:
    plan = organize.send_as_list(account_id(request))
    return web.json_response(await _run(request, Feature.SETTINGS, plan))


async def get_vacation(request: web.Request) -> web.Response:
    plan = organize.vacation(account_id(request))
    return web.json_response(await _run(request, Feature.SETTINGS, plan))


async def update_vacation(request: web.Request) -> web.Response:
    account = account_id(request)
    plan = organize.vacation_update(account, _vacation_body(await read_json(request)))
    return web.json_response(await _run(request, Feature.SETTINGS, plan))


# -- route table ----------------------------------------------------------------------------

_ACC = "/v1/accounts/{account_id}"
_E = (400, 403, 404, 409, 429, 503)
_EW = (400, 403, 404, 409, 415, 422, 429, 503)
_LIST = (
    QueryParam("q", {"type": "string"}, "Gmail search query"),
    QueryParam("label", {"type": "string"}, "label id (repeatable)"),
    *page_params(default=_PAGE, high=_MAX_PAGE),
)
_IDS: Any = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LABEL_CHANGES}
CHANGE: Any = {
    "type": "object", "additionalProperties": False,
    "properties": {"add_label_ids": _IDS, "remove_label_ids": _IDS,
                   "actions": {"type": "array", "items": {"enum": list(LabelAction)}}},
}  # fmt: skip
BATCH: Any = {**CHANGE, "required": ["ids"], "properties": {
    **CHANGE["properties"],
    "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000},
}}  # fmt: skip
LABEL: Any = {"type": "object", "additionalProperties": False, "properties": {
    "name": {"type": "string", "maxLength": 225},
    "message_list_visibility": {"enum": ["show", "hide"]},
    "label_list_visibility": {"enum": ["labelShow", "labelShowIfUnread", "labelHide"]},
}}  # fmt: skip
VACATION: Any = {"type": "object", "additionalProperties": False, "properties": {
    **{k: {"type": "boolean"} for k in _VACATION_FLAGS},
    **{k: {"type": "string", "maxLength": n} for k, (_, n) in _VACATION_TEXTS.items()},
    "start_time": {"type": "string", "format": "date-time"},
    "end_time": {"type": "string", "format": "date-time"},
}}  # fmt: skip
_ORG = "Needs the organize feature (gmail.modify); without it 403 scope-not-granted."
_SET = "Needs the settings feature (gmail.settings.basic); without it 403 scope-not-granted."
_MOD = (f"{_ORG} `actions`: archive = remove INBOX, read = remove UNREAD, star, important, "
        "spam (adds SPAM, removes INBOX) and their opposites.")  # fmt: skip

ROUTES = [
    RouteSpec("GET", f"{_ACC}/labels", list_labels, "List labels", "organize", USER,
              response=s.GMAIL_JSON, errors=_E),
    RouteSpec("POST", f"{_ACC}/labels", create_label, "Create a label", "organize", USER,
              status=201, request=LABEL, response=s.GMAIL_JSON, errors=_EW, description=_ORG),
    RouteSpec("PATCH", f"{_ACC}/labels/{{label_id}}", update_label, "Rename or restyle a label",
              "organize", USER, request=LABEL, response=s.GMAIL_JSON, errors=_EW,
              description=_ORG),
    RouteSpec("DELETE", f"{_ACC}/labels/{{label_id}}", delete_label,
              "Delete a label (the messages stay)", "organize", USER, status=204, errors=_E,
              description=_ORG),
    RouteSpec("POST", f"{_ACC}/messages/{{message_id}}/modify", modify_message,
              "Change a message's labels (archive, read, star, spam, ...)", "organize", USER,
              request=CHANGE, response=s.GMAIL_JSON, errors=_EW, description=_MOD),
    RouteSpec("POST", f"{_ACC}/messages/batch-modify", batch_modify,
              "Change the labels of up to 1,000 messages in one call", "organize", USER,
              request=BATCH, response=s.GMAIL_JSON, errors=_EW, description=_MOD),
    RouteSpec("POST", f"{_ACC}/messages/{{message_id}}/trash", trash_message,
              "Move a message to the trash", "organize", USER, response=s.GMAIL_JSON,
              errors=_E, description=_ORG),
    RouteSpec("POST", f"{_ACC}/messages/{{message_id}}/untrash", untrash_message,
              "Take a message out of the trash", "organize", USER, response=s.GMAIL_JSON,
              errors=_E, description=_ORG),
    RouteSpec("GET", f"{_ACC}/threads", list_threads, "List or search threads", "organize",
              USER, response=s.GMAIL_JSON, query=_LIST, errors=_E),
    RouteSpec("POST", f"{_ACC}/threads/{{thread_id}}/modify", modify_thread,
              "Change the labels of every message in a thread", "organize", USER,
              request=CHANGE, response=s.GMAIL_JSON, errors=_EW, description=_MOD),
    RouteSpec("POST", f"{_ACC}/threads/{{thread_id}}/trash", trash_thread,
              "Move a thread to the trash", "organize", USER, response=s.GMAIL_JSON, errors=_E,
              description=_ORG),
    RouteSpec("POST", f"{_ACC}/threads/{{thread_id}}/untrash", untrash_thread,
              "Take a thread out of the trash", "organize", USER, response=s.GMAIL_JSON,
              errors=_E, description=_ORG),
    RouteSpec("GET", f"{_ACC}/settings/send-as", list_send_as,
              "Send-as addresses and their signatures", "settings", USER,
              response=s.GMAIL_JSON, errors=_E, description=_SET),
    RouteSpec("GET", f"{_ACC}/settings/vacation", get_vacation, "The vacation responder",
              "settings", USER, response=s.GMAIL_JSON, errors=_E, description=_SET),
    RouteSpec("PUT", f"{_ACC}/settings/vacation", update_vacation,
              "Set the vacation responder", "settings", USER, request=VACATION,
              response=s.GMAIL_JSON, errors=_EW, description=_SET),
]  # fmt: skip
