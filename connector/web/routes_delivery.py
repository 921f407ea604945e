"""Webhook dead letters for admins: list them, deliver one again (same event id).

    GET  /v1/webhooks/dead-letters?account_id=&limit=&cursor=   {"deadLetters": [...], "nextCursor"}
    POST /v1/webhooks/dead-letters/{letter_id}/redeliver        {"id", "delivered", "error"}

Both are `Operation.DELIVERY_MANAGE` (grant `admin.delivery`). The list is permitted and recorded
before anything is returned and carries ids, seq, kind, attempts and the last error code, never the
payload. A redelivery is authorized and recorded as requested; the POST itself is the dispatcher's
transfer, decided and recorded like every delivery. Without CONNECTOR_WEBHOOK_URL both answer 409
`webhooks-disabled`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from audit.event import IDENTIFIER
from audit.vocab import Action, Purpose
from connector.delivery.dispatcher import Dispatcher
from connector.delivery.models import DeadLetterStatus
from connector.errors import RedeliveryInProgressError
from connector.policy.recorder import Change
from connector.policy.vocab import Operation
from connector.web.components import ref
from connector.web.context import request_id, services
from connector.web.problems import ProblemError, ProblemType
from connector.web.routing import ADMIN, QueryParam, RouteSpec, caller_of
from connector.web.validation import check_id, path_id

MAX_PAGE = 100
_LETTER_ID = IDENTIFIER  # event ids are msg_<account>_<seq>


@dataclass(slots=True)
class DeliverySlot:
    """The running dispatcher, set while the service delivers webhooks (None: no URL set)."""

    dispatcher: Dispatcher | None = None


DELIVERY: web.AppKey[DeliverySlot] = web.AppKey("delivery", DeliverySlot)


def _dispatcher(request: web.Request) -> Dispatcher:
    slot = request.app.get(DELIVERY)
    if slot is None or slot.dispatcher is None:
        raise ProblemError(
            ProblemType.WEBHOOKS_DISABLED,
            "webhook delivery is off (CONNECTOR_WEBHOOK_URL is not set): there are no dead "
            "letters to list or redeliver",
        )
    return slot.dispatcher


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ProblemError(ProblemType.MALFORMED_REQUEST, f"limit: expected 1 to {MAX_PAGE}")
    return int(raw)


def _optional_id(request: web.Request, name: str, what: str) -> str | None:
    raw = request.query.get(name)
    return None if raw is None else check_id(raw, IDENTIFIER, what)


def _change(request: web.Request, action: Action, account: str | None) -> Change:
    return Change(
        caller_of(request).actor, Operation.DELIVERY_MANAGE, action, Purpose.USER_FEATURE,
        account_id=account, request_id=request_id(request),
    )  # fmt: skip


async def list_dead_letters(request: web.Request) -> web.Response:
    store = _dispatcher(request).store
    account = _optional_id(request, "account_id", "account id")
    cursor = _optional_id(request, "cursor", "cursor")
    limit = _limit(request)
    if cursor is not None and await store.dead_letter_by_id(cursor) is None:
        raise ProblemError(ProblemType.INVALID_PAGE_TOKEN, "cursor names no dead letter")
    change = _change(request, Action.WEBHOOK_DEAD_LETTERS_LISTED, account)
    await services(request).authority.permit(change)  # recorded before anything is returned
    letters = await store.dead_letter_page(account_id=account, after_id=cursor, limit=limit + 1)
    page = letters[:limit]
    return web.json_response(
        {
            "deadLetters": [letter.as_json() for letter in page],
            "nextCursor": page[-1].id if len(letters) > limit else None,
        },
        headers={"Cache-Control": "no-store"},
    )


async def redeliver(request: web.Request) -> web.Response:
    dispatcher = _dispatcher(request)
    letter_id = path_id(request, "letter_id", _LETTER_ID, "dead letter id")
    letter = await dispatcher.store.dead_letter_by_id(letter_id)
    if letter is None:
        raise ProblemError(ProblemType.NOT_FOUND, "no dead letter with this id")
    change = _change(request, Action.WEBHOOK_REDELIVERY_REQUESTED, letter.account_id)
    authority = services(request).authority
    await authority.authorize(change)  # a refusal is recorded and answered 403
    if letter.status is DeadLetterStatus.REDELIVERED:
        raise ProblemError(ProblemType.CONFLICT, "this dead letter was already redelivered")
    await authority.record(change)
    try:
        error = await dispatcher.redeliver(letter)  # the transfer: decided and recorded again
    except RedeliveryInProgressError:
        raise ProblemError(
            ProblemType.CONFLICT, "another request is redelivering this dead letter right now"
        ) from None
    outcome = {"id": letter.id, "delivered": error is None, "error": error}
    return web.json_response(outcome)


_QUERY = (
    QueryParam("account_id", {"type": "string", "pattern": IDENTIFIER.pattern},
               "only this account's dead letters"),
    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
               f"at most this many (default {MAX_PAGE})"),
    QueryParam("cursor", {"type": "string", "pattern": IDENTIFIER.pattern},
               "the previous page's `nextCursor`"),
)  # fmt: skip

ROUTES = [
    RouteSpec("GET", "/v1/webhooks/dead-letters", list_dead_letters,
              "Webhook dead letters, oldest first (ids and error codes only)", "webhooks", ADMIN,
              response=ref("DeadLetterPage"), errors=(400, 403, 409, 503), query=_QUERY,
              description="Changes given up on after CONNECTOR_WEBHOOK_HORIZON_HOURS (or refused "
              "by the policy), still undelivered. Recorded in the audit log. 409 "
              "`webhooks-disabled` when no CONNECTOR_WEBHOOK_URL is set."),
    RouteSpec("POST", "/v1/webhooks/dead-letters/{letter_id}/redeliver", redeliver,
              "Deliver a dead letter again, with the same webhook-id", "webhooks", ADMIN,
              response=ref("Redelivery"), errors=(400, 403, 404, 409, 503),
              description="The outcome: `delivered` true when the receiver accepted it (the "
              "letter is then redelivered), else false with the error code (`http.503`, "
              "`timeout`, `unreachable`; it stays a dead letter). 409 if it was "
              "already redelivered or webhooks are off. The POST is decided and recorded as a "
              "transfer, like every delivery."),
]  # fmt: skip
