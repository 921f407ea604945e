"""Every refused request leaves exactly one refusal in the audit trail, whichever layer refused.

Refusals by the policy further down (the gate, the authority) are recorded where they happen. The
route-level decision (`route_policy`) and input errors (a malformed body, an unknown id, a reused
Idempotency-Key) refuse before any of those run; `record_refusal` writes their event, and the
`refusals` middleware writes one for any 4xx answer to an identified caller that left none.
Unauthenticated requests are not recorded: there is no identity to record, and an anonymous flood
must not be able to grow the evidence log (the request log line has them).
"""

from __future__ import annotations

from aiohttp import web

from audit.event import IDENTIFIER
from audit.vocab import Action, Purpose
from connector.policy.recorder import Change, is_refusal, tracking
from connector.policy.rules import Verdict
from connector.web.context import request_id, services, source
from connector.web.errors import to_problem
from connector.web.handler_types import Handler
from connector.web.keys import CALLER, PROBLEM, ROUTE_OPERATION
from connector.web.problems import problem_response
from connector.web.route_policy import RouteOperation


def _account(request: web.Request) -> str | None:
    account = request.match_info.get("account_id")
    return account if account is not None and IDENTIFIER.fullmatch(account) else None


def _route_code(request: web.Request) -> str:
    handler = getattr(request.match_info.handler, "__name__", "unmatched")
    return f"route:{request.method.lower()}_{handler}"[:64]


async def record_refusal(
    request: web.Request,
    route: RouteOperation,
    *,
    verdict: Verdict | None = None,
    reasons: tuple[str, ...] = (),
) -> None:
    """Append the refusal of this request (fail closed: no record, no answer but 503)."""
    caller = request[CALLER]
    purposes = sorted(route.purposes)
    purpose: Purpose | None = purposes[0] if len(purposes) == 1 else None
    change = Change(
        caller.actor, route.operation, Action.API_REQUEST_REFUSED, purpose,
        account_id=_account(request), request_id=request_id(request), source=source(request),
    )  # fmt: skip
    codes = (f"role:{caller.role.value}", _route_code(request), *reasons)
    recorder = services(request).recorder
    if verdict is not None:
        await recorder.change(change, verdict, reasons=codes)
    else:
        await recorder.change(change, reasons=codes, failed=True)


def _problem_code(request: web.Request, response: web.StreamResponse) -> str:
    """`problem:<type slug>` when the answer is one of our problems, else `http-<status>`."""
    kind = request.get(PROBLEM)
    return f"problem:{kind.value}"[:64] if kind is not None else f"http-{response.status}"


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    with tracking() as recorded:
        response = await handler(request)
    caller = request.get(CALLER)
    route = request.get(ROUTE_OPERATION)
    refused_here = 400 <= response.status < 500 and response.status != 401
    if caller is None or route is None or not refused_here:
        return response
    if any(is_refusal(event) for event in recorded):
        return response
    try:
        await record_refusal(request, route, reasons=(_problem_code(request, response),))
    except Exception as exc:  # the refusal could not be recorded: say so, fail closed
        problem = to_problem(exc)
        if problem is None:
            raise
        return problem_response(problem, request_id=request_id(request), instance=request.path)
    return response
