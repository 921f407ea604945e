"""Turning features on for a linked account (incremental authorization, issue #14).

Organize (gmail.modify) and settings (gmail.settings.basic) are not part of a first link; the
owner turns them on here. The answer is the disclosure page of a link of the same account that
keeps its granted features and asks Google for the new ones; the `grant` of a
`scope-not-granted` problem points here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connector.accounts.scopes import Feature
from connector.web import schemas as s
from connector.web.context import request_id, services
from connector.web.problems import ProblemError, ProblemType
from connector.web.routing import USER, RouteSpec, caller_of
from connector.web.validation import Fields, account_id, read_json


async def grant_features(request: web.Request) -> web.Response:
    """Start a link of this account that adds `features` to what it has: the disclosure page
    says why each new scope is asked for, then Google's consent page asks for it."""
    account = account_id(request)
    fields = Fields(await read_json(request), {"features", "return_url"})
    names = fields.strings("features", max_items=len(Feature), max_len=32)
    known = {f.value for f in Feature}
    if not names or not set(names) <= known:
        fields.bad("features", f"name 1 or more of {', '.join(sorted(known))}")
    return_url = fields.optional_string("return_url", max_len=2048)
    fields.done()
    linking = services(request).accounts.linking
    if linking is None:
        raise ProblemError(
            ProblemType.CONFLICT,
            "this deployment links accounts out of band; the link flow is not enabled",
        )
    result = await linking.start_features(
        caller_of(request).sub, account, [Feature(n) for n in names],
        request_id=request_id(request), return_url=return_url,
    )  # fmt: skip
    return web.json_response(result, status=201, headers={"Location": result["disclosure_url"]})


FEATURES: Any = {"type": "object", "additionalProperties": False, "required": ["features"],
                 "properties": {"features": {"type": "array", "minItems": 1,
                                             "items": {"enum": [f.value for f in Feature]}},
                                "return_url": {"type": "string"}}}  # fmt: skip

ROUTES = [
    RouteSpec("POST", "/v1/accounts/{account_id}/features", grant_features,
              "Turn features on for a linked account (e.g. organize, settings)", "accounts",
              USER, status=201, request=FEATURES, response=s.GMAIL_JSON,
              errors=(400, 403, 404, 409, 415, 422, 503),
              description="Answers the disclosure page URL of a link that keeps the account's "
              "granted features and asks Google for the new ones (incremental authorization); "
              "the `grant` of a scope-not-granted problem points here."),
]  # fmt: skip
