"""Live updates for the browser: the change feed's SSE stream under the session cookie.

EventSource cannot send a bearer header, so the page's script opens `/app/accounts/{id}/events`
instead of the API route; the session's caller is decided and recorded exactly as on
`GET /v1/accounts/{id}/changes/stream` (the same `ChangeFeed.open`, one TRANSFER record per
stream opened).
"""

from __future__ import annotations

from aiohttp import web

from connector.web.routes_changes import stream_changes
from connector.web.routing import caller_of
from connector.web.validation import account_id
from connector.webclient.pages import page


@page("GET", "/v1/accounts/{account_id}/changes/stream")
async def events(request: web.Request) -> web.StreamResponse:
    return await stream_changes(request, caller_of(request).actor, account_id(request))
