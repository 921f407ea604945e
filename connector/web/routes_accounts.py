"""Linking: start (disclosure page, then Google), OAuth callback, status, unlink with receipt."""

from __future__ import annotations

import re

from aiohttp import web

from connector.accounts.http_linking import BROWSER_COOKIE, TICKET_TTL, new_browser_id
from connector.web.components import ref
from connector.web.context import request_id, services
from connector.web.keys import SETTINGS
from connector.web.paging import LIST_MAX_PAGE, LIST_PAGE, page_params, page_tokens, slice_page
from connector.web.problems import ProblemError, ProblemType
from connector.web.query_check import LENIENT_QUERY
from connector.web.routing import USER, QueryParam, RouteSpec, caller_of
from connector.web.schemas import page_of
from connector.web.validation import InvalidInputError, account_id, query_text, read_json
from connector.wiring import Linking

STATE = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")
TICKET = re.compile(r"^[A-Za-z0-9_\-]{8,400}\.[0-9a-f]{64}$")
BROWSER_ID = re.compile(r"^[A-Za-z0-9_\-]{32,64}$")


def _linking(request: web.Request) -> Linking:
    linking = services(request).accounts.linking
    if linking is None:
        raise ProblemError(
            ProblemType.CONFLICT,
            "this deployment links accounts out of band; the link flow is not enabled",
        )
    return linking


def _state(request: web.Request) -> str:
    state = request.query.get("state", "")
    if not STATE.fullmatch(state):
        raise InvalidInputError([{"field": "state", "problem": "missing or malformed"}])
    return state


def _ticket(value: str | None) -> str:
    if value is None or not TICKET.fullmatch(value):
        raise InvalidInputError([{"field": "ticket", "problem": "missing or malformed"}])
    return value


def _browser(request: web.Request) -> str | None:
    """This browser's link cookie, if it carries a well-formed one."""
    value = request.cookies.get(BROWSER_COOKIE, "")
    return value if BROWSER_ID.fullmatch(value) else None


def _bind_browser(request: web.Request, response: web.Response, browser: str) -> None:
    # HttpOnly: no script reads it. SameSite=Lax: sent on Google's top-level redirect to the
    # callback (a GET navigation) but on no cross-site subrequest. Path /v1/: the disclosure
    # page, Continue and the callback only share that prefix.
    secure = request.app[SETTINGS].public_base_url.startswith("https://")
    response.set_cookie(BROWSER_COOKIE, browser, max_age=TICKET_TTL, path="/v1/",
                        httponly=True, samesite="Lax", secure=secure)  # fmt: skip


async def _return_url(request: web.Request) -> str | None:
    """The optional `{"return_url": ...}` body of a link start (no body: the default)."""
    if not request.body_exists:
        return None
    value = (await read_json(request)).get("return_url")
    if value is not None and not isinstance(value, str):
        raise InvalidInputError([{"field": "return_url", "problem": "expected a string"}])
    return value


async def start_link(request: web.Request) -> web.Response:
    result = await _linking(request).start(
        caller_of(request).sub, request_id=request_id(request),
        return_url=await _return_url(request),
    )  # fmt: skip
    # the link attempt lives at its disclosure page, where the user continues
    return web.json_response(result, status=201, headers={"Location": result["disclosure_url"]})


async def disclosure(request: web.Request) -> web.Response:
    browser = _browser(request) or new_browser_id()
    html = await _linking(request).disclosure(_ticket(request.query.get("ticket")), browser)
    response = web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-store"})  # fmt: skip
    _bind_browser(request, response, browser)
    return response


async def accept_disclosure(request: web.Request) -> web.Response:
    """The disclosure page's Continue button: only this affirmative action starts the link."""
    form = await request.post()
    ticket = form.get("ticket")
    accepted = form.get("disclosure_accepted") == "yes"
    url = await _linking(request).begin(_ticket(ticket if isinstance(ticket, str) else None),
                                        accepted, _browser(request))  # fmt: skip
    return web.Response(status=302, headers={"Location": url})


async def callback(request: web.Request) -> web.Response:
    code = query_text(request, "code", max_len=2048)
    error = query_text(request, "error", max_len=128)
    outcome = await _linking(request).complete(
        _state(request), code, error, request_id=request_id(request), browser=_browser(request)
    )
    # The browser goes back to the platform (303: a GET of the return URL) or, with no return
    # URL set, sees a plain page; never raw JSON. The cookie has done its job either way.
    if outcome.return_url is not None:
        response = web.Response(status=303, headers={"Location": outcome.location()})
    else:
        response = web.Response(
            text=outcome.page(), content_type="text/html",
            status=200 if outcome.account is not None else 400,
        )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    response.del_cookie(BROWSER_COOKIE, path="/v1/")
    return response


async def list_accounts(request: web.Request) -> web.Response:
    found = await _linking(request).accounts(caller_of(request).sub)
    page, next_token = slice_page(
        request, found, page_tokens(request, "accounts"), default=LIST_PAGE, high=LIST_MAX_PAGE
    )
    return web.json_response({"accounts": list(page), "next_page_token": next_token})


async def account_status(request: web.Request) -> web.Response:
    account = account_id(request)
    return web.json_response(await _linking(request).status(caller_of(request).sub, account))


async def unlink(request: web.Request) -> web.Response:
    account = account_id(request)
    receipt = await _linking(request).unlink(caller_of(request).sub, account)
    services(request).inbox.forget_account(account)
    return web.json_response(receipt)


_STATE_Q = (QueryParam("state", {"type": "string"}, "the link attempt", required=True),)
_TICKET_Q = (
    QueryParam("ticket", {"type": "string"}, "from POST /v1/accounts/link", required=True),
)

ROUTES = [
    RouteSpec("POST", "/v1/accounts/link", start_link,
              "Start linking a Gmail account (returns the disclosure page URL)", "accounts",
              USER, status=201, response=ref("LinkStart"), errors=(409, 422, 503),
              request={"type": "object", "properties": {"return_url": {
                  "type": "string", "description": "where the callback sends the browser back; "
                  "one of CONNECTOR_LINK_RETURN_URLS (default: the first)"}}}),
    RouteSpec("GET", "/v1/link/disclosure", disclosure,
              "The Limited Use disclosure, shown right before Google's consent page",
              "accounts", None, response_type="text/html", query=_TICKET_Q,
              errors=(401, 409, 422)),
    RouteSpec("POST", "/v1/link/start", accept_disclosure,
              "Continue from the disclosure page (form: ticket, disclosure_accepted=yes); "
              "redirects to Google", "accounts", None, status=302, errors=(400, 401, 409, 422),
              request={"type": "object", "properties": {"ticket": {"type": "string"},
                       "disclosure_accepted": {"enum": ["yes"]}}},
              extra={"request_type": "application/x-www-form-urlencoded"}),
    RouteSpec("GET", "/v1/oauth/callback", callback, "Google's redirect back (OAuth callback)",
              "accounts", None, response_type="text/html", errors=(400, 403, 404, 409, 422, 503),
              description="Redirects (303) to the return URL with `link=linked&account_id=...` "
              "or `link=failed&reason=...`; with no return URL set, a plain page (200 or 400).",
              query=(*_STATE_Q, QueryParam("code", {"type": "string"}, "authorization code"),
                     QueryParam("error", {"type": "string"}, "set when the user declined")),
              extra={LENIENT_QUERY: True}),
    RouteSpec("GET", "/v1/accounts", list_accounts, "My linked accounts", "accounts", USER,
              response=page_of("accounts", ref("Account")), errors=(409,),
              query=page_params(default=LIST_PAGE, high=LIST_MAX_PAGE)),
    RouteSpec("GET", "/v1/accounts/{account_id}", account_status,
              "Account status: linked, granted features, needs relinking", "accounts", USER,
              response=ref("Account"), errors=(400, 403, 404, 409)),
    RouteSpec("DELETE", "/v1/accounts/{account_id}", unlink,
              "Unlink: revoke at Google, purge tokens, return a deletion receipt", "accounts",
              USER, response=ref("DeletionReceipt"), errors=(400, 404, 409, 503)),
]  # fmt: skip
