"""Route declarations: one `RouteSpec` per endpoint is both the router entry and its OpenAPI
operation, so an undocumented route cannot exist."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from connector.web.auth import Caller, Role
from connector.web.handler_types import Handler
from connector.web.keys import CALLER, ROUTE_OPERATION, VERIFIER
from connector.web.problems import ProblemError, ProblemType
from connector.web.query_check import LENIENT_QUERY, strict_query
from connector.web.refusals import record_refusal
from connector.web.route_policy import permitted_roles, route_operation, route_verdict

Schema = Mapping[str, Any]

ANY_ROLE = frozenset(Role)
# Who a route is for (`RouteSpec.roles`); the policy decides again on the full facts.
USER = frozenset({Role.USER})
OPERATOR = frozenset({Role.OPERATOR})
REVIEWER = frozenset({Role.REVIEWER})
ADMIN = frozenset({Role.ADMIN})


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: Schema
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: frozenset[Role] | None  # None: no authentication (health, metrics, OAuth callback)
    status: int = 200
    request: Schema | None = None
    response: Schema | None = None
    response_type: str = "application/json"
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = ()
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def caller_of(request: web.Request) -> Caller:
    return request[CALLER]


def _guard(spec: RouteSpec) -> Handler:
    """Authenticate, then ask the policy whether this caller may attempt the route at all.

    A refusal is recorded before the 403 goes out; what the route then does is decided again,
    on the full facts, by the gate or the authority.
    """
    handler = spec.handler
    if spec.roles is None:
        return handler
    route = route_operation(spec.method, spec.path)
    allowed = ", ".join(sorted(permitted_roles(route)))

    @functools.wraps(handler)  # the route keeps its handler's name (audit codes, logs)
    async def guarded(request: web.Request) -> web.StreamResponse:
        caller = request.app[VERIFIER].caller(request.headers.get("Authorization"))
        request[CALLER] = caller
        request[ROUTE_OPERATION] = route
        verdict = route_verdict(caller, route)
        if not verdict.allowed:
            await record_refusal(request, route, verdict=verdict)
            raise ProblemError(
                ProblemType.ROLE_NOT_PERMITTED,
                f"this endpoint is for {allowed}; your token's role is {caller.role}. "
                "The attempt was recorded in the audit log.",
            )
        return await handler(request)

    return guarded


def install(app: web.Application, specs: list[RouteSpec]) -> None:
    for spec in specs:
        if not spec.extra.get(LENIENT_QUERY):  # checked after authentication, inside the guard
            declared = frozenset(q.name for q in spec.query)
            spec = replace(spec, handler=strict_query(spec.handler, declared))  # noqa: PLW2901
        app.router.add_route(spec.method, spec.path, _guard(spec))
