"""Reviewers download the evidence pack (`connector evidence`) from the running service.

POST /v1/audit/evidence?since=&until= answers a zip of the pack over that period (until
defaults to now), decided and recorded as an audit read before anything is collected. The
policy and gate suites are not run in the service: the pack's manifest says they were skipped.
A service without a stored audit log or a checkpoint signing key answers 409 saying which.
"""

from __future__ import annotations

from aiohttp import web

from audit.event import Actor
from audit.pack_figures import Period
from audit.vocab import Action, Purpose
from connector.evidence.service import pack_archive, refusal
from connector.policy.recorder import Change
from connector.policy.vocab import Operation
from connector.web.components import ref
from connector.web.context import request_id, services
from connector.web.problems import ProblemError, ProblemType
from connector.web.routes_audit import _PURPOSE, _purpose
from connector.web.routing import REVIEWER, QueryParam, RouteSpec, caller_of
from connector.web.validation import InvalidInputError, query_time

PATH = "/v1/audit/evidence"
ZIP = "application/zip"


def period_of(request: web.Request) -> Period:
    """The period from `since` and `until` (ISO times with offset); until defaults to now."""
    since, until = query_time(request, "since"), query_time(request, "until")
    until = until or services(request).clock()
    if since is not None and since >= until:
        raise InvalidInputError([{"field": "since", "problem": "must be before until"}])
    return Period(since, until)


async def pack_response(
    request: web.Request, actor: Actor, purpose: Purpose, period: Period
) -> web.Response:
    """The signed pack over `period` as a zip download (also the reviewer console's)."""
    svc = services(request)
    problem = refusal(svc.audit_log, svc.settings)
    if problem is not None:
        raise ProblemError(ProblemType.CONFLICT, f"the evidence pack cannot be made: {problem}")
    change = Change(actor, Operation.AUDIT_READ, Action.AUDIT_EXPORTED, purpose,
                    request_id=request_id(request))  # fmt: skip
    body = await pack_archive(svc.audit_log, svc.authority, change, settings=svc.settings,
                              period=period, clock=svc.clock)  # fmt: skip
    stamp = period.until.strftime("%Y%m%dT%H%M%SZ") if period.until else "now"
    return web.Response(body=body, headers={
        "Content-Type": ZIP,
        "Content-Disposition": f'attachment; filename="evidence-{stamp}.zip"',
    })  # fmt: skip


async def evidence(request: web.Request) -> web.Response:
    return await pack_response(
        request, caller_of(request).actor, _purpose(request), period_of(request)
    )


ROUTES = [
    RouteSpec("POST", PATH, evidence, "Download the signed evidence pack for a period (zip)",
              "audit", REVIEWER, response=ref("EvidencePackZip"),
              response_type=ZIP, errors=(403, 409, 422, 503),
              query=(_PURPOSE,
                     QueryParam("since", {"type": "string", "format": "date-time"}, "inclusive"),
                     QueryParam("until", {"type": "string", "format": "date-time"},
                                "exclusive (default now)"))),
]  # fmt: skip
