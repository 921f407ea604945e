"""Request id, error → problem mapping, and one diagnostic line per request.

The log line names the route template, never the URL (queries and ids stay out of logs).
"""

from __future__ import annotations

import os
import re
import time

import structlog
from aiohttp import web

from connector.logs import get_logger, request_id_var
from connector.web.errors import to_problem
from connector.web.handler_types import Handler
from connector.web.keys import METRICS, PROBLEM, REQUEST_ID
from connector.web.problems import ProblemError, ProblemType, problem_response

log = get_logger("connector.web")
_INBOUND_ID = re.compile(r"^[A-Za-z0-9_.:\-]{8,64}$")


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(unmatched)"


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    inbound = request.headers.get("X-Request-ID", "")
    request_id = inbound if _INBOUND_ID.fullmatch(inbound) else os.urandom(16).hex()
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except Exception as exc:
        problem = to_problem(exc)
        if problem is None:
            log.error("unhandled_error", route=_route(request), error_type=type(exc).__name__,
                      exc_info=True)  # fmt: skip
            problem = ProblemError(
                ProblemType.INTERNAL,
                f"an unexpected error occurred; quote request id {request_id} when reporting it",
            )
        request[PROBLEM] = problem.kind  # named in the refusal's audit event (web.refusals)
        response = problem_response(problem, request_id=request_id, instance=request.path)
        status = response.status
        return response
    finally:
        route = _route(request)
        metrics = request.app[METRICS]
        metrics.child(metrics.http_requests, route, str(status)).inc()
        log.info(
            "request",
            method=request.method,
            route=route,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        request_id_var.reset(token)
        structlog.contextvars.clear_contextvars()


async def request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed ones included, names its request id."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-ID"] = request_id
