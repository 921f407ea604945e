"""Reviewers query, verify and export the audit trail; owners read their access history.
Every one of these reads is itself recorded. Reviewers have no route to mail."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from audit.export import ExportFormat
from audit.records import QueryFilter
from audit.verify import Authenticity, Trust, VerifyReport
from audit.vocab import Action, Decision, Purpose
from connector.policy.oversight import event_json
from connector.web import schemas as s
from connector.web.context import request_id, services
from connector.web.paging import (
    LIST_MAX_PAGE,
    LIST_PAGE,
    int_cursor,
    page_params,
    page_size,
    page_tokens,
    seal_next,
)
from connector.web.routing import REVIEWER, USER, QueryParam, RouteSpec, caller_of
from connector.web.validation import (
    InvalidInputError,
    account_id,
    query_choice,
    query_text,
    query_time,
)

_CASEWORK = (Purpose.SECURITY.value, Purpose.LEGAL.value)
_MEDIA = {
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.CSV: "text/csv",
    ExportFormat.OCSF: "application/x-ndjson",
}


def _purpose(request: web.Request) -> Purpose:
    return Purpose(query_choice(request, "purpose", _CASEWORK, Purpose.SECURITY.value))


def _optional_enum(request: web.Request, name: str, enum: Any) -> Any:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return enum(raw)
    except ValueError:
        raise InvalidInputError(
            [{"field": name, "problem": f"unknown value {raw[:40]!r}"}]
        ) from None


def _filters(request: web.Request) -> QueryFilter:
    return QueryFilter(
        account_id=query_text(request, "account_id", max_len=128),
        actor_id=query_text(request, "actor_id", max_len=128),
        action=_optional_enum(request, "action", Action),
        purpose=_optional_enum(request, "event_purpose", Purpose),
        decision=_optional_enum(request, "decision", Decision),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
        resource_id=query_text(request, "resource_id", max_len=1024),
    )


async def query_events(request: web.Request) -> web.Response:
    filters = _filters(request)
    tokens = page_tokens(request, "audit-events")
    page = await services(request).oversight.query(
        caller_of(request).actor, _purpose(request), filters,
        limit=page_size(request, default=LIST_PAGE, high=LIST_MAX_PAGE),
        after_seq=int_cursor(request, tokens), request_id=request_id(request),
    )  # fmt: skip
    return web.json_response({
        "events": [event_json(e) for e in page.events],
        "next_page_token": seal_next(tokens, page.next_after),
    })  # fmt: skip


def report_json(report: VerifyReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    data["ok"] = report.ok
    # The same verdict as `audit verify`: authentic only under pinned keys.
    data["authenticity"] = report.authenticity.value
    data["authentic"] = report.authenticity is Authenticity.AUTHENTIC
    first = report.first
    data["first_bad_seq"] = None if first is None else first.seq
    return data


async def verify(request: web.Request) -> web.Response:
    report = await services(request).oversight.verify(
        caller_of(request).actor, _purpose(request), request_id=request_id(request)
    )
    return web.json_response(report_json(report))


async def export(request: web.Request) -> web.StreamResponse:
    fmt = ExportFormat(query_choice(request, "format", tuple(ExportFormat), "jsonl"))
    filters = _filters(request)
    lines = await services(request).oversight.export(
        caller_of(request).actor, _purpose(request), fmt, filters, request_id=request_id(request)
    )
    response = web.StreamResponse(headers={
        "Content-Type": _MEDIA[fmt],
        "Content-Disposition": f'attachment; filename="audit.{fmt.value}"',
    })  # fmt: skip
    await response.prepare(request)
    async for line in lines:
        await response.write(line.encode())
    await response.write_eof()
    return response


async def access_history(request: web.Request) -> web.Response:
    account = account_id(request)
    tokens = page_tokens(request, "access-history", account)
    page = await services(request).oversight.history(
        caller_of(request).actor, account,
        limit=page_size(request, default=LIST_PAGE, high=LIST_MAX_PAGE),
        before_seq=int_cursor(request, tokens), request_id=request_id(request),
    )  # fmt: skip
    return web.json_response({
        "events": [event_json(e, for_owner=True) for e in page.events],
        "next_page_token": seal_next(tokens, page.next_after),
    })  # fmt: skip


_PAGE = page_params(default=LIST_PAGE, high=LIST_MAX_PAGE)
_PURPOSE = QueryParam("purpose", {"enum": list(_CASEWORK)}, "why you read (default security)")
_FILTERS = (
    QueryParam("account_id", {"type": "string"}, "only this account"),
    QueryParam("actor_id", {"type": "string"}, "only this actor"),
    QueryParam("action", {"enum": list(Action)}, "only this action"),
    QueryParam("event_purpose", {"enum": list(Purpose)}, "only events with this purpose"),
    QueryParam("decision", {"enum": list(Decision)}, "allow or deny"),
    QueryParam("since", {"type": "string", "format": "date-time"}, "inclusive"),
    QueryParam("until", {"type": "string", "format": "date-time"}, "exclusive"),
    QueryParam("resource_id", {"type": "string"}, "a message, thread, consent ... id"),
)

ROUTES = [
    RouteSpec("GET", "/v1/audit/events", query_events, "Query the audit trail", "audit",
              REVIEWER, response=s.EVENT_PAGE, errors=(403, 422, 503),
              query=(_PURPOSE, *_FILTERS, *_PAGE)),
    RouteSpec("POST", "/v1/audit/verify", verify,
              "Verify the hash chain and signed checkpoints", "audit", REVIEWER,
              query=(_PURPOSE,), response={"type": "object", "properties": {
                  "ok": {"type": "boolean"}, "first_bad_seq": {"type": ["integer", "null"]},
                  "authentic": {"type": "boolean"},
                  "authenticity": {"enum": list(Authenticity)},
                  "trust": {"enum": list(Trust)}, "signed_seq": {"type": "integer"}}},
              errors=(403, 422, 503)),
    RouteSpec("GET", "/v1/audit/export", export, "Export the audit trail (JSONL, CSV, OCSF)",
              "audit", REVIEWER, response_type="application/x-ndjson", errors=(403, 422, 503),
              extra={"response_types": tuple(dict.fromkeys(_MEDIA.values()))},
              query=(_PURPOSE, QueryParam("format", {"enum": list(ExportFormat)}, "format"),
                     *_FILTERS)),
    RouteSpec("GET", "/v1/accounts/{account_id}/access-history", access_history,
              "Who accessed my mailbox and why", "accounts", USER, response=s.EVENT_PAGE,
              errors=(400, 403, 422, 503),
              query=_PAGE),
]  # fmt: skip
