"""Query parameters are as strict as body fields: one the operation does not declare is refused
(422 `validation-failed`, every unknown name listed) rather than silently ignored, so a typo such
as `max_result=5` is reported instead of quietly answering with the default."""

from __future__ import annotations

import functools

from aiohttp import web

from connector.web.handler_types import Handler
from connector.web.validation import InvalidInputError

# A RouteSpec.extra flag for routes whose query another party composes: Google's OAuth redirect
# adds parameters of its own (iss, scope, authuser, hd, prompt) that the connector must accept.
LENIENT_QUERY = "lenient_query"


def strict_query(handler: Handler, declared: frozenset[str]) -> Handler:
    """`handler`, refusing any query parameter not in `declared`."""

    @functools.wraps(handler)  # keeps the handler's name for the guard, logs and audit codes
    async def checked(request: web.Request) -> web.StreamResponse:
        unknown = sorted(set(request.query) - declared)
        if unknown:
            raise InvalidInputError(
                [{"field": name[:64], "problem": "unknown query parameter"} for name in unknown]
            )
        return await handler(request)

    return checked
