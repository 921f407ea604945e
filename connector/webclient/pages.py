"""What every page does before its handler: the session, the CSRF check on a state change, and
the same route-level policy decision as the JSON API route the page mirrors.

A page names the API route it stands for (`page("GET", "/v1/accounts/{account_id}/messages")`):
the policy table in `connector.web.route_policy` then decides whether this caller may attempt it,
a refusal is recorded exactly as the API records it, and the `refusals` middleware records any
other 4xx the page answers (a missing CSRF token included). Errors the services raise become the
same problem types as in the API, shown as a page instead of problem+json.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from connector.web.errors import to_problem
from connector.web.keys import CALLER, ROUTE_OPERATION
from connector.web.problems import SPECS
from connector.web.refusals import record_refusal
from connector.web.route_policy import route_operation, route_verdict
from connector.webclient.session import (
    CSRF_FIELD,
    Session,
    SessionRefusedError,
    Sessions,
    check_csrf,
)

SESSIONS: web.AppKey[Sessions] = web.AppKey("webclient_sessions", Sessions)
SESSION: web.RequestKey[Session] = web.RequestKey("webclient_session", Session)
FORM: web.RequestKey[MultiDictProxy[Any]] = web.RequestKey("webclient_form", MultiDictProxy)
PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACC = "/v1/accounts/{account_id}"  # the API routes of one account, as pages name them


class Notice(StrEnum):
    """What a redirect after a change tells the user (a closed list: no text from the URL)."""

    SENT = "sent"
    CONSENT_GRANTED = "consent_granted"
    CONSENT_REVOKED = "consent_revoked"
    REQUEST_CREATED = "request_created"
    REQUEST_APPROVED = "request_approved"
    REQUEST_DISMISSED = "request_dismissed"
    SIGNED_OUT = "signed_out"
    ORGANIZED = "organized"
    NOTHING_SELECTED = "nothing_selected"


NOTICE_TEXT: Mapping[Notice, str] = {
    Notice.SENT: "Your message was sent.",
    Notice.CONSENT_GRANTED: "Access granted. You can revoke it here at any time.",
    Notice.CONSENT_REVOKED: "Access revoked. The support person can no longer read those messages.",
    Notice.REQUEST_CREATED: "Access request filed. A second operator must approve it.",
    Notice.REQUEST_APPROVED: "Access request approved.",
    Notice.REQUEST_DISMISSED: "Access request dismissed.",
    Notice.SIGNED_OUT: "You are signed out.",
    Notice.ORGANIZED: "Done.",
    Notice.NOTHING_SELECTED: "Select at least one message, then an action.",
}


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def form_of(request: web.Request) -> MultiDictProxy[Any]:
    return request[FORM]


def form_text(request: web.Request, name: str, max_len: int = 4000) -> str:
    value = form_of(request).get(name, "")
    return value.strip()[:max_len] if isinstance(value, str) else ""


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    session = request.get(SESSION)
    notice = request.query.get("notice")
    base: dict[str, Any] = {
        "session": session,
        "caller": None if session is None else session.caller,
        "csrf": "" if session is None else session.csrf,
        "csrf_field": CSRF_FIELD,
        "notice": NOTICE_TEXT.get(Notice(notice)) if notice in set(Notice) else None,
    }
    base.update(context)
    return aiohttp_jinja2.render_template(template, request, base, status=status)


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    return render(request, "error.html", {"title": title, "detail": detail, "status": status},
                  status=status)  # fmt: skip


def page(
    method: str | None = None, api_path: str | None = None, *, change: bool = False
) -> Callable[[PageHandler], PageHandler]:
    """Wrap a page handler; `method`/`api_path` name the API route it mirrors (None: none,
    e.g. the home page); `change`: a state change (POST with the CSRF token)."""
    route = None if method is None or api_path is None else route_operation(method, api_path)

    def wrap(handler: PageHandler) -> PageHandler:
        @functools.wraps(handler)  # the refusal's route code names the page handler
        async def run(request: web.Request) -> web.StreamResponse:
            session = request.app[SESSIONS].read(request)
            if session is None:
                return error_page(request, 401, "Please sign in",
                                  "Open the mail client from the platform to sign in.")  # fmt: skip
            request[SESSION] = session
            request[CALLER] = session.caller
            if route is not None:
                request[ROUTE_OPERATION] = route
            try:
                if change:
                    form = await request.post()
                    request[FORM] = form
                    sent = form.get(CSRF_FIELD)
                    check_csrf(request, session, sent if isinstance(sent, str) else None)
                if route is not None:
                    verdict = route_verdict(session.caller, route)
                    if not verdict.allowed:
                        await record_refusal(request, route, verdict=verdict)
                        return error_page(request, 403, "Not available to your role",
                                          "This page is not for your role. The attempt was "
                                          "recorded in the audit log.")  # fmt: skip
                return await handler(request)
            except SessionRefusedError as exc:
                return error_page(request, 403, "Request refused", str(exc))
            except Exception as exc:
                problem = to_problem(exc)
                if problem is None:
                    raise
                return error_page(request, problem.status, SPECS[problem.kind].title,
                                  problem.detail)  # fmt: skip

        return run

    return wrap


def redirect(location: str) -> web.Response:
    """After a change, the page to show (303: the browser follows with a GET). Returned, not
    raised: the problems middleware treats a raised redirect as an unexpected error."""
    return web.Response(status=303, headers={"Location": location})


def without_empty_fields(request: web.Request) -> web.Response | None:
    """A GET form sends its empty fields too; they mean "not given": the same page without
    them (None when there are none)."""
    if all(request.query.values()):
        return None
    kept = {k: v for k, v in request.query.items() if v}
    return redirect(str(request.rel_url.with_query(kept)))
