"""Staff consoles. Operators: the access request queue (a second operator approves or dismisses,
never the requester: the authority decides), a support read that states its basis and shows only
what the basis covers (the gate refuses the rest), the k-anonymous aggregates. Reviewers: query
the audit trail with filters, verify it, export it. Every read is the API's own service call."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from aiohttp import web

from audit.event import IDENTIFIER
from audit.pack_figures import Period
from audit.records import QueryFilter
from audit.vocab import BasisKind, Purpose
from connector.policy import ApprovalStatus, plans
from connector.policy.oversight import event_json
from connector.web import routes_audit, routes_evidence
from connector.web.context import access_context, request_id, services
from connector.web.routes_audit import report_json
from connector.web.routes_human import _basis, request_json
from connector.web.routing import caller_of
from connector.web.validation import (
    GMAIL_ID,
    RECORD_ID,
    InvalidInputError,
    check_id,
    path_id,
    query_int,
)
from connector.webclient.mailview import message_view, plain_text
from connector.webclient.pages import (
    Notice,
    form_text,
    page,
    redirect,
    render,
    without_empty_fields,
)
from connector.webclient.wording import WHY

AR = "/v1/access-requests"
CASEWORK = (Purpose.SECURITY.value, Purpose.LEGAL.value)


@page("GET", AR)
async def operator(request: web.Request) -> web.StreamResponse:
    requests = services(request).access_requests
    now = services(request).clock()
    rows = [request_json(r, r.fact.effective_status(now))
            for r in await requests.list_access_requests()]  # fmt: skip
    me = caller_of(request).sub
    return render(request, "operator.html", {
        "open": [r for r in rows if r["status"] == ApprovalStatus.PENDING.value],
        "decided": [r for r in rows if r["status"] != ApprovalStatus.PENDING.value][:50],
        "me": me, "purposes": CASEWORK, "title": "Operator console",
    })  # fmt: skip


@page("POST", AR, change=True)
async def create_request(request: web.Request) -> web.StreamResponse:
    account = form_text(request, "account_id", 128)
    purpose = form_text(request, "purpose", 16)
    ids = [check_id(m.strip(), GMAIL_ID, "message id")
           for m in form_text(request, "message_ids", 4000).split(",") if m.strip()]  # fmt: skip
    hours = form_text(request, "duration_hours", 4)
    await services(request).access_requests.request_access(
        caller_of(request).actor, account,
        purpose=Purpose(purpose) if purpose in CASEWORK else Purpose.SECURITY,
        case_reference=form_text(request, "case_reference", 200),
        reason=form_text(request, "reason", 4000),
        duration=timedelta(hours=int(hours) if hours in {"1", "24", "72"} else 24),
        message_ids=ids, time_from=None, time_to=None, legal_hold=False,
        request_id=request_id(request),
    )  # fmt: skip
    return redirect(f"/app/operator?notice={Notice.REQUEST_CREATED}")


async def _decide(request: web.Request, approve: bool) -> web.StreamResponse:
    rid = path_id(request, "request_id", RECORD_ID, "access request id")
    requests = services(request).access_requests
    decide = requests.approve if approve else requests.dismiss
    await decide(caller_of(request).actor, rid, request_id=request_id(request))
    notice = Notice.REQUEST_APPROVED if approve else Notice.REQUEST_DISMISSED
    return redirect(f"/app/operator?notice={notice}")


@page("POST", f"{AR}/{{request_id}}/approve", change=True)
async def approve(request: web.Request) -> web.StreamResponse:
    return await _decide(request, True)


@page("POST", f"{AR}/{{request_id}}/dismiss", change=True)
async def dismiss(request: web.Request) -> web.StreamResponse:
    return await _decide(request, False)


@page("GET", "/v1/support/accounts/{account_id}/messages/{message_id}")
async def support_read(request: web.Request) -> web.StreamResponse:
    """The message the basis covers, as text, with the basis stated above it."""
    cleaned = without_empty_fields(request)  # the form's unused basis fields
    if cleaned is not None:
        return cleaned
    account = form_account(request)
    message = check_id(request.query.get("message_id", ""), GMAIL_ID, "message id")
    basis, purpose, case = await _basis(request)
    ctx = access_context(request, purpose, support_case=case)
    found = await services(request).gate.run(ctx, plans.message(account, message, "full", basis))
    view = message_view(found)
    text = view.text if view.text is not None else plain_text(view.html or "")
    return render(request, "support_read.html", {
        "view": view, "text": text, "basis": basis, "purpose": purpose,
        "read_account": account, "kind": BasisKind, "title": "Support read",
        "why": WHY.get(purpose, purpose.value),
    })  # fmt: skip


def form_account(request: web.Request) -> str:
    return check_id(request.query.get("account_id", ""), IDENTIFIER, "account id")


@page("GET", "/v1/aggregates")
async def aggregates(request: web.Request) -> web.StreamResponse:
    today = services(request).clock().date()
    ctx = access_context(request, Purpose.AGGREGATE_OPS)
    report = await services(request).gate.aggregates(ctx, today - timedelta(days=6), today)
    return render(request, "aggregates.html", {"report": report, "title": "Usage aggregates"})


# -- reviewers --------------------------------------------------------------------------------


def _filters(request: web.Request) -> QueryFilter:
    return routes_audit._filters(request)


@page("GET", "/v1/audit/events")
async def reviewer(request: web.Request) -> web.StreamResponse:
    cleaned = without_empty_fields(request)  # empty filter fields mean "any"
    if cleaned is not None:
        return cleaned
    purpose = routes_audit._purpose(request)
    after = query_int(request, "after_seq", default=0, low=0, high=2**62)
    found = await services(request).oversight.query(
        caller_of(request).actor, purpose, _filters(request), limit=100,
        after_seq=after or None, request_id=request_id(request),
    )  # fmt: skip
    return render(request, "reviewer.html", {
        "events": [event_json(e) for e in found.events], "next": found.next_after,
        "query": dict(request.query), "purposes": CASEWORK, "title": "Audit trail",
    })  # fmt: skip


@page("POST", "/v1/audit/verify", change=True)
async def verify(request: web.Request) -> web.StreamResponse:
    purpose = form_text(request, "purpose", 16)
    report = await services(request).oversight.verify(
        caller_of(request).actor,
        Purpose(purpose) if purpose in CASEWORK else Purpose.SECURITY,
        request_id=request_id(request),
    )  # fmt: skip
    template = "verify_result.html" if request.headers.get("HX-Request") else "verify.html"
    return render(request, template, {"report": report_json(report), "title": "Verification"})


@page("GET", "/v1/audit/export")
async def export(request: web.Request) -> web.StreamResponse:
    """The API's own export handler: the same formats, filters and audit record."""
    return await routes_audit.export(request)


def _day(request: web.Request, name: str) -> datetime | None:
    """A date field (YYYY-MM-DD) as midnight UTC; empty means unbounded."""
    text = form_text(request, name, 10)
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        raise InvalidInputError([{"field": name, "problem": "expected a date"}]) from None


@page("POST", routes_evidence.PATH, change=True)
async def evidence(request: web.Request) -> web.StreamResponse:
    """The API's evidence pack: from the first day (inclusive) to the day after the last."""
    purpose = form_text(request, "purpose", 16)
    since, last = _day(request, "since"), _day(request, "until")
    until = services(request).clock() if last is None else last + timedelta(days=1)
    if since is not None and since >= until:
        raise InvalidInputError([{"field": "since", "problem": "must be before the last day"}])
    return await routes_evidence.pack_response(
        request, caller_of(request).actor,
        Purpose(purpose) if purpose in CASEWORK else Purpose.SECURITY, Period(since, until),
    )  # fmt: skip
