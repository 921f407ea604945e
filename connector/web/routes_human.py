"""Human access: owners' consents, operators' access requests and approvals, operator reads
through the gate with a basis, and k-anonymous aggregates."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from aiohttp import web

from audit.event import IDENTIFIER, Basis
from audit.vocab import BasisKind, Purpose
from connector.policy import (
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRecordNotFoundError,
    plans,
)
from connector.policy.aggregates import AggregateReport
from connector.policy.records import AccessRequestRecord
from connector.web import schemas as s
from connector.web.components import ref
from connector.web.context import access_context, request_id, services
from connector.web.paging import LIST_MAX_PAGE, LIST_PAGE, page_params, page_tokens, slice_page
from connector.web.routes_inbox import stream_attachment
from connector.web.routing import OPERATOR, USER, QueryParam, RouteSpec, caller_of
from connector.web.validation import (
    ATTACHMENT_ID,
    GMAIL_ID,
    RECORD_ID,
    Fields,
    InvalidInputError,
    account_id,
    check_id,
    path_id,
    query_choice,
    read_json,
)

MAX_AGGREGATE_DAYS = 366


def _plain(value: object) -> object:
    """A fact's field as JSON: enums by value, id sets sorted, times in ISO 8601."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fields(fact: object, *names: str) -> dict[str, Any]:
    return {name: _plain(getattr(fact, name)) for name in names}


def consent_json(c: ConsentFact) -> dict[str, Any]:
    # Not `granted_by`: only the owner, who granted it, is shown a consent.
    return _fields(
        c, "id", "account_id", "grantee_kind", "grantee_id", "message_ids", "created_at",
        "expires_at", "revoked_at",
    )  # fmt: skip


def request_json(r: AccessRequestRecord, status: ApprovalStatus) -> dict[str, Any]:
    f = r.fact
    return {
        **_fields(f, "id", "account_id", "requester_id", "purpose"),
        "status": status.value,  # the effective status, which the stored one may lag
        "case_reference": r.case_reference,
        "reason": r.reason,
        **_fields(f, "message_ids", "time_from", "time_to"),
        "duration_hours": int(r.duration.total_seconds() // 3600),
        **_fields(f, "created_at", "decided_by", "expires_at", "legal_hold"),
    }


# -- consents (owners) ----------------------------------------------------------------------


async def create_consent(request: web.Request) -> web.Response:
    account = account_id(request)
    fields = Fields(await read_json(request), {"message_ids", "grantee_kind", "grantee_id",
                                                "ttl_days"})  # fmt: skip
    ids = fields.strings("message_ids", max_items=500, max_len=64)
    kind = fields.choice("grantee_kind", tuple(GranteeKind), required=False) or "operator"
    grantee = fields.string("grantee_id", required=True, max_len=128)
    ttl = fields.integer("ttl_days", default=7, low=1, high=30)
    if not ids:
        fields.bad("message_ids", "name at least one message id")
    fields.done()
    for message_id in ids:
        check_id(message_id, GMAIL_ID, "message id")
    consent = await services(request).consents.grant_consent(
        caller_of(request).actor, account, ids, GranteeKind(kind), grantee,
        ttl=timedelta(days=ttl), request_id=request_id(request),
    )  # fmt: skip
    return web.json_response(
        consent_json(consent), status=201, headers={"Location": f"/v1/consents/{consent.id}"}
    )


async def list_consents(request: web.Request) -> web.Response:
    account = account_id(request)
    consents = await services(request).consents.list_consents(
        caller_of(request).actor, account, request_id=request_id(request)
    )
    page, next_token = slice_page(
        request, consents, page_tokens(request, "consents", account), default=LIST_PAGE,
        high=LIST_MAX_PAGE,
    )  # fmt: skip
    return web.json_response(
        {"consents": [consent_json(c) for c in page], "next_page_token": next_token}
    )


async def revoke_consent(request: web.Request) -> web.Response:
    consent_id = path_id(request, "consent_id", RECORD_ID, "consent id")
    consent = await services(request).consents.revoke_consent(
        caller_of(request).actor, consent_id, request_id=request_id(request)
    )
    return web.json_response(consent_json(consent))


# -- access requests (operators) ------------------------------------------------------------


async def create_access_request(request: web.Request) -> web.Response:
    fields = Fields(
        await read_json(request),
        {"account_id", "purpose", "case_reference", "reason", "duration_hours", "message_ids",
         "time_from", "time_to", "legal_hold"},
    )  # fmt: skip
    account = fields.string("account_id", required=True, max_len=128)
    purpose = fields.choice("purpose", (Purpose.SECURITY.value, Purpose.LEGAL.value))
    case_reference = fields.string("case_reference", required=True, max_len=200)
    reason = fields.string("reason", required=True, max_len=4000)
    hours = fields.integer("duration_hours", default=24, low=1, high=720)
    ids = fields.strings("message_ids", max_items=500, max_len=64)
    time_from, time_to = fields.timestamp("time_from"), fields.timestamp("time_to")
    legal_hold = fields.boolean("legal_hold")
    fields.done()
    for message_id in ids:
        check_id(message_id, GMAIL_ID, "message id")
    fact = await services(request).access_requests.request_access(
        caller_of(request).actor, account, purpose=Purpose(purpose),
        case_reference=case_reference, reason=reason, duration=timedelta(hours=hours),
        message_ids=ids, time_from=time_from, time_to=time_to, legal_hold=legal_hold,
        request_id=request_id(request),
    )  # fmt: skip
    record = await services(request).access_requests.get_access_request(fact.id)
    return web.json_response(
        request_json(record, fact.status), status=201,
        headers={"Location": f"{_AR}/{fact.id}"},
    )  # fmt: skip


async def list_access_requests(request: web.Request) -> web.Response:
    choice = query_choice(request, "status", ("any", *ApprovalStatus), "any")
    status = None if choice == "any" else ApprovalStatus(choice)
    records = await services(request).access_requests.list_access_requests(status=status)
    now = services(request).clock()
    tokens = page_tokens(request, f"access-requests:{choice}")
    page, next_token = slice_page(request, records, tokens, default=LIST_PAGE, high=LIST_MAX_PAGE)
    return web.json_response({
        "access_requests": [request_json(r, r.fact.effective_status(now)) for r in page],
        "next_page_token": next_token,
    })  # fmt: skip


def _request_id_param(request: web.Request) -> str:
    return path_id(request, "request_id", RECORD_ID, "access request id")


async def get_access_request(request: web.Request) -> web.Response:
    record = await services(request).access_requests.get_access_request(_request_id_param(request))
    now = services(request).clock()
    return web.json_response(request_json(record, record.fact.effective_status(now)))


async def _decide(request: web.Request, approve: bool) -> web.Response:
    requests = services(request).access_requests
    rid = _request_id_param(request)
    actor = caller_of(request).actor
    decide = requests.approve if approve else requests.dismiss
    fact = await decide(actor, rid, request_id=request_id(request))
    record = await requests.get_access_request(fact.id)
    return web.json_response(request_json(record, fact.status))


async def approve_access_request(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def dismiss_access_request(request: web.Request) -> web.Response:
    return await _decide(request, False)


# -- operator reads (through the gate, with a basis) ----------------------------------------


async def _basis(request: web.Request) -> tuple[Basis | None, Purpose, str | None]:
    """The basis named by the query; none at all is passed on so the gate refuses and records."""
    consent = request.query.get("consent_id")
    approval = request.query.get("access_request_id")
    case = request.query.get("support_case")
    if case is not None:
        check_id(case, IDENTIFIER, "support case")
    if consent is not None and approval is not None:
        raise InvalidInputError([{"field": "consent_id", "problem": "name one basis, not both"}])
    if consent is None and approval is None:
        return None, Purpose.CONSENTED_SUPPORT, case
    if consent is not None:
        check_id(consent, RECORD_ID, "consent id")
        return Basis(BasisKind.CONSENT, consent), Purpose.CONSENTED_SUPPORT, case
    assert approval is not None
    check_id(approval, RECORD_ID, "access request id")
    try:
        record = await services(request).access_requests.get_access_request(approval)
        purpose = record.fact.purpose
    except PolicyRecordNotFoundError:
        purpose = Purpose.SECURITY  # the gate refuses (basis.unknown) and records the attempt
    return Basis(BasisKind.ACCESS_REQUEST, approval), purpose, None


async def operator_read_message(request: web.Request) -> web.Response:
    account = account_id(request)
    message = path_id(request, "message_id", GMAIL_ID, "message id")
    fmt = query_choice(request, "format", ("full", "metadata"), "full")
    basis, purpose, case = await _basis(request)
    ctx = access_context(request, purpose, support_case=case)
    result = await services(request).gate.run(ctx, plans.message(account, message, fmt, basis))
    return web.json_response(result)


async def operator_read_thread(request: web.Request) -> web.Response:
    account = account_id(request)
    thread = path_id(request, "thread_id", GMAIL_ID, "thread id")
    basis, purpose, case = await _basis(request)
    ctx = access_context(request, purpose, support_case=case)
    return web.json_response(
        await services(request).gate.run(ctx, plans.thread(account, thread, "full", basis))
    )


async def operator_attachment(request: web.Request) -> web.StreamResponse:
    account = account_id(request)
    message = path_id(request, "message_id", GMAIL_ID, "message id")
    attachment = path_id(request, "attachment_id", ATTACHMENT_ID, "attachment id")
    basis, purpose, case = await _basis(request)
    ctx = access_context(request, purpose, support_case=case)
    return await stream_attachment(
        request, ctx, plans.attachment(account, message, attachment, basis)
    )


# -- aggregates -----------------------------------------------------------------------------


def _day(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInputError(
            [{"field": name, "problem": "expected a date, YYYY-MM-DD"}]
        ) from None


def report_json(report: AggregateReport) -> dict[str, Any]:
    return {
        "k": report.k,
        "suppressed_groups": report.suppressed_groups,
        "rows": [
            {"day": r.day.isoformat(), "operation": r.operation, "count": r.count,
             "error_count": r.error_count, "error_rate": round(r.error_rate, 4)}
            for r in report.rows
        ],
    }  # fmt: skip


async def aggregates(request: web.Request) -> web.Response:
    today = services(request).clock().date()
    start = _day(request, "start", today - timedelta(days=6))
    end = _day(request, "end", today)
    if not start <= end or (end - start).days > MAX_AGGREGATE_DAYS:
        raise InvalidInputError(
            [{"field": "start", "problem": "start <= end, at most 366 days apart"}]
        )
    ctx = access_context(request, Purpose.AGGREGATE_OPS)
    report = await services(request).gate.aggregates(ctx, start, end)
    return web.json_response(report_json(report))


_ACC = "/v1/accounts/{account_id}"
_SUP = "/v1/support/accounts/{account_id}"
_BASIS = (
    QueryParam("consent_id", {"type": "string"}, "the owner's consent (purpose consented_support)"),
    QueryParam("access_request_id", {"type": "string"},
               "an approved security/legal access request (its purpose applies)"),
    QueryParam("support_case", {"type": "string"}, "the case worked, for case-named consents"),
)  # fmt: skip
_DENY = (400, 403, 404, 409, 429, 503)
_AR = "/v1/access-requests"

ROUTES = [
    RouteSpec("POST", f"{_ACC}/consents", create_consent,
              "Consent to a support person viewing specific messages", "consents", USER,
              status=201, request=s.CONSENT_CREATE, response=s.CONSENT,
              errors=(400, 403, 413, 415, 422, 503)),
    RouteSpec("GET", f"{_ACC}/consents", list_consents, "List consents on an account",
              "consents", USER, response=s.page_of("consents", s.CONSENT), errors=(400, 403),
              query=page_params(default=LIST_PAGE, high=LIST_MAX_PAGE)),
    RouteSpec("DELETE", "/v1/consents/{consent_id}", revoke_consent, "Revoke a consent",
              "consents", USER, response=s.CONSENT, errors=(400, 403, 404, 503)),
    RouteSpec("POST", _AR, create_access_request,
              "Request security/legal access (needs a second operator's approval)",
              "access requests", OPERATOR, status=201, request=s.ACCESS_REQUEST_CREATE,
              response=s.ACCESS_REQUEST, errors=(400, 403, 413, 415, 422, 503)),
    RouteSpec("GET", _AR, list_access_requests, "The access request queue", "access requests",
              OPERATOR, query=(QueryParam("status", {"enum": ["any", *ApprovalStatus]},
                                          "filter on effective status"),
                               *page_params(default=LIST_PAGE, high=LIST_MAX_PAGE)),
              response=s.page_of("access_requests", s.ACCESS_REQUEST),
              errors=(403, 422)),
    RouteSpec("GET", f"{_AR}/{{request_id}}", get_access_request, "One access request",
              "access requests", OPERATOR, response=s.ACCESS_REQUEST, errors=(400, 403, 404)),
    RouteSpec("POST", f"{_AR}/{{request_id}}/approve", approve_access_request,
              "Approve another operator's request", "access requests", OPERATOR,
              response=s.ACCESS_REQUEST, errors=(400, 403, 404, 503)),
    RouteSpec("POST", f"{_AR}/{{request_id}}/dismiss", dismiss_access_request,
              "Dismiss another operator's request", "access requests", OPERATOR,
              response=s.ACCESS_REQUEST, errors=(400, 403, 404, 503)),
    RouteSpec("GET", f"{_SUP}/messages/{{message_id}}", operator_read_message,
              "Operator read of a message with a basis", "support", OPERATOR,
              response=ref("Message"), errors=_DENY,
              query=(*_BASIS, QueryParam("format", {"enum": ["full", "metadata"]}, "format"))),
    RouteSpec("GET", f"{_SUP}/threads/{{thread_id}}", operator_read_thread,
              "Operator read of a thread with a basis", "support", OPERATOR,
              response=ref("Thread"), errors=_DENY, query=_BASIS),
    RouteSpec("GET", f"{_SUP}/messages/{{message_id}}/attachments/{{attachment_id}}",
              operator_attachment, "Operator download of an attachment with a basis", "support",
              OPERATOR, response_type="application/octet-stream", errors=_DENY, query=_BASIS),
    RouteSpec("GET", "/v1/aggregates", aggregates,
              "Usage aggregates across accounts (k-anonymous, no identifiers)", "support",
              OPERATOR, errors=(403, 422, 503),
              query=(QueryParam("start", {"type": "string", "format": "date"}, "first day"),
                     QueryParam("end", {"type": "string", "format": "date"}, "last day")),
              response=ref("AggregateReport")),
]  # fmt: skip
