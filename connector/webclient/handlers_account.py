"""The owner's account pages: sign-in hand-off, accounts and linking, consents, 'Who accessed my
mail', export my data, unlink. Each calls the service the matching JSON API route calls."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from aiohttp import web

from audit.vocab import ActorKind
from connector.accounts.scopes import Feature
from connector.policy import GranteeKind
from connector.web import routes_rights
from connector.web.auth import Role
from connector.web.context import request_id, services
from connector.web.errors import to_problem
from connector.web.problems import SPECS, ProblemError, ProblemType
from connector.web.routing import caller_of
from connector.web.validation import GMAIL_ID, RECORD_ID, account_id, check_id, path_id
from connector.webclient.pages import (
    ACC,
    SESSIONS,
    Notice,
    error_page,
    form_of,
    form_text,
    page,
    redirect,
    render,
    session_of,
)
from connector.webclient.wording import by_others
from connector.wiring import Linking

HISTORY_LIMIT = 200
# Features a linked account can add later, with what each lets the client do.
OPTIONAL_FEATURES = {"organize": "archive, label, star, mark read, report spam and trash"}
_REASON = re.compile(r"^[a-z_]{1,40}$")
_NEXT = re.compile(r"^/app/[A-Za-z0-9_/-]{0,200}$")


def _linking(request: web.Request) -> Linking:
    linking = services(request).accounts.linking
    if linking is None:
        raise ProblemError(ProblemType.CONFLICT, "this deployment links accounts out of band")
    return linking


def _sub(request: web.Request) -> str:
    return caller_of(request).sub


# -- sign-in hand-off -------------------------------------------------------------------------


async def sign_in(request: web.Request) -> web.StreamResponse:
    """The platform's JWT (query `token` or form field) becomes a session cookie."""
    token = request.query.get("token")
    if request.method == "POST":
        token = (await request.post()).get("token")  # type: ignore[assignment]
    if not isinstance(token, str) or not token:
        return render(request, "signin.html", {})
    sessions = request.app[SESSIONS]
    try:
        _, cookie = sessions.sign_in(token)
    except Exception as exc:
        problem = to_problem(exc)
        if problem is None:
            raise
        return error_page(request, problem.status, SPECS[problem.kind].title, problem.detail)
    # The token leaves the address bar at once (303 to a clean URL; no referrer is ever sent).
    # `next` may only name a page of this client: no open redirect.
    target = request.query.get("next", "")
    response = redirect(target if _NEXT.fullmatch(target) else "/app/")
    sessions.set_cookie(request, response, cookie)
    return response


@page(change=True)
async def sign_out(request: web.Request) -> web.StreamResponse:
    sessions = request.app[SESSIONS]
    await sessions.sign_out(session_of(request))
    response = redirect(f"/app/signin?notice={Notice.SIGNED_OUT}")
    sessions.clear_cookie(request, response)
    return response


@page()
async def home(request: web.Request) -> web.StreamResponse:
    role = caller_of(request).role
    target = {Role.USER: "/app/accounts", Role.OPERATOR: "/app/operator",
              Role.REVIEWER: "/app/reviewer"}.get(role)  # fmt: skip
    if target is None:
        detail = "Administrators configure the service; there are no mail pages."
        return error_page(request, 403, "Nothing here for your role", detail)
    return redirect(target)


# -- accounts and linking ---------------------------------------------------------------------


@page("GET", "/v1/accounts")
async def accounts(request: web.Request) -> web.StreamResponse:
    found = await _linking(request).accounts(_sub(request))
    context = {"accounts": found, "optional": OPTIONAL_FEATURES, "title": "Your Gmail accounts"}
    # Back from Google: the link flow's outcome, as codes (`link`, `reason`), never free text.
    outcome, reason = request.query.get("link"), request.query.get("reason", "")
    if outcome == "linked":
        context["notice"] = "Your Gmail account is linked."
    elif outcome == "failed":
        code = f" ({reason})" if _REASON.fullmatch(reason) else ""
        context["notice"] = f"Linking did not finish{code}. You can try again."
    return render(request, "accounts.html", context)


def _return_url(request: web.Request) -> str | None:
    """Back to the accounts page after Google, when the deployment allow-lists it."""
    settings = services(request).settings
    url = f"{settings.public_base_url}/app/accounts"
    return url if url in settings.link_return_urls else None


@page("POST", "/v1/accounts/link", change=True)
async def link(request: web.Request) -> web.StreamResponse:
    """Link or relink: to the disclosure page, then Google's consent page, then back."""
    started = await _linking(request).start(
        _sub(request), request_id=request_id(request), return_url=_return_url(request)
    )
    return redirect(started["disclosure_url"])


@page("POST", f"{ACC}/features", change=True)
async def features(request: web.Request) -> web.StreamResponse:
    """Turn a feature on (incremental authorization): the disclosure names the new scope."""
    wanted = form_text(request, "feature", 32)
    if wanted not in OPTIONAL_FEATURES:
        raise ProblemError(ProblemType.VALIDATION_FAILED, "choose organize or settings")
    started = await _linking(request).start_features(
        _sub(request), account_id(request), [Feature(wanted)], request_id=request_id(request),
        return_url=_return_url(request),
    )  # fmt: skip
    return redirect(started["disclosure_url"])


@page("GET", ACC)
async def unlink_confirm(request: web.Request) -> web.StreamResponse:
    account = await _linking(request).status(_sub(request), account_id(request))
    return render(
        request, "unlink.html", {"account": account, "account_id": account["id"], "title": "Unlink"}
    )


@page("DELETE", ACC, change=True)
async def unlink(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    receipt = await _linking(request).unlink(_sub(request), account)
    services(request).inbox.forget_account(account)
    return render(request, "receipt.html", {"receipt": receipt, "title": "Account unlinked"})


# -- consents ---------------------------------------------------------------------------------


@page("GET", f"{ACC}/consents")
async def consents(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    found = await services(request).consents.list_consents(
        caller_of(request).actor, account, request_id=request_id(request)
    )
    chosen = [check_id(m, GMAIL_ID, "message id") for m in request.query.getall("message_id", [])]
    now = services(request).clock()
    rows = [(c, c.revoked_at is None and c.expires_at > now) for c in found]
    return render(request, "consents.html", {
        "account_id": account, "consents": rows, "chosen": chosen[:500],
        "title": "Access you granted",
    })  # fmt: skip


@page("POST", f"{ACC}/consents", change=True)
async def grant(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    ids = [
        check_id(str(m), GMAIL_ID, "message id") for m in form_of(request).getall("message_id", [])
    ]
    kind = form_text(request, "grantee_kind", 16) or GranteeKind.OPERATOR.value
    # One named support person, or whoever works the named support case.
    grantee = form_text(request, "grantee_id" if kind == "operator" else "case_id", 128)
    days = form_text(request, "ttl_days", 3)
    if not ids or not grantee or days not in {"1", "7", "30"} or kind not in set(GranteeKind):
        detail = "choose at least one message, a support person or case, and a duration"
        raise ProblemError(ProblemType.VALIDATION_FAILED, detail)
    await services(request).consents.grant_consent(
        caller_of(request).actor, account, ids, GranteeKind(kind), grantee,
        ttl=timedelta(days=int(days)), request_id=request_id(request),
    )  # fmt: skip
    return redirect(f"/app/accounts/{account}/consents?notice={Notice.CONSENT_GRANTED}")


@page("DELETE", "/v1/consents/{consent_id}", change=True)
async def revoke(request: web.Request) -> web.StreamResponse:
    consent_id = path_id(request, "consent_id", RECORD_ID, "consent id")
    consent = await services(request).consents.revoke_consent(
        caller_of(request).actor, consent_id, request_id=request_id(request)
    )
    return redirect(f"/app/accounts/{consent.account_id}/consents?notice={Notice.CONSENT_REVOKED}")


# -- who accessed my mail, export -------------------------------------------------------------


async def _history(request: web.Request, account: str) -> list[Any]:
    found = await services(request).oversight.history(
        caller_of(request).actor, account, limit=HISTORY_LIMIT, before_seq=None,
        request_id=request_id(request),
    )  # fmt: skip
    return found.events


@page("GET", f"{ACC}/access-history")
async def history(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    rows = by_others(await _history(request, account), _sub(request))
    return render(request, "history.html", {"account_id": account, "rows": rows,
                                            "title": "Who accessed my mail"})  # fmt: skip


@page("GET", f"{ACC}/export")
async def export(request: web.Request) -> web.StreamResponse:
    """Everything the connector holds about the account, as one JSON file (the API's export;
    `?format=csv`: the access history as CSV)."""
    if request.query.get("format") is not None:
        return await routes_rights.export_account_data(request)
    account = account_id(request)
    body = await routes_rights.document(request, account)
    body["accessed_by_others"] = sum(
        1 for e in body["access_history"] if e["actor"]["kind"] != ActorKind.USER.value
    )
    return web.Response(
        body=json.dumps(body, indent=2).encode(), content_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="my-data-{account}.json"'},
    )  # fmt: skip
