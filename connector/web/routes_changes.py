"""The owner's change feed: a page after a cursor, or a server-sent-events stream.

    GET /v1/accounts/{id}/changes?cursor=<seq>&limit=    {"changes": [...], "nextCursor": seq}
    GET /v1/accounts/{id}/changes/stream                  text/event-stream, `id:` = seq

Both are `Operation.TRANSFER` for the owner, decided and recorded by `ChangeFeed` before any
change leaves (one record per page, one per stream when it opens). The stream resumes after the
`Last-Event-ID` header (what EventSource sends on reconnect), else after `cursor`, else from the
feed's current end; it sends `retry:` first, a comment as heartbeat, and ends after `unlinked`,
at shutdown, or after `FEED_STREAM_SECONDS`. `stream_changes` is shared with the web client's
session-cookie route.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from aiohttp import web

from audit.event import Actor
from connector.accounts.sync_store import MAX_PAGE, StoredChange
from connector.web.components import ref
from connector.web.context import request_id, services
from connector.web.routing import USER, QueryParam, RouteSpec, caller_of
from connector.web.validation import InvalidInputError, account_id

SEQ = re.compile(r"^(0|[1-9][0-9]{0,17})$")  # a feed seq: 0 (the start) or a positive integer
RETRY_MS = 3000


def _seq(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if not SEQ.fullmatch(value):
        raise InvalidInputError([{"field": field, "problem": "expected a non-negative integer"}])
    return int(value)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return MAX_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInputError([{"field": "limit", "problem": f"expected 1 to {MAX_PAGE}"}])
    return int(raw)


async def list_changes(request: web.Request) -> web.Response:
    account = account_id(request)
    after = _seq(request.query.get("cursor"), "cursor") or 0
    page = await services(request).feed.read(
        caller_of(request).actor, account, after=after, limit=_limit(request),
        request_id=request_id(request),
    )  # fmt: skip
    return web.json_response(
        {"changes": [c.as_json() for c in page.changes], "nextCursor": page.next_cursor},
        headers={"Cache-Control": "no-store"},
    )


def event_text(change: StoredChange) -> str:
    """One SSE event: `id:` the seq, `event: change`, the change's JSON on one `data:` line."""
    data = json.dumps(change.as_json(), separators=(",", ":"))
    return f"id: {change.seq}\nevent: change\ndata: {data}\n\n"


async def stream_changes(request: web.Request, actor: Actor, account: str) -> web.StreamResponse:
    """The SSE stream of `account`'s feed for `actor` (permitted and recorded first)."""
    resume = _seq(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    cursor = resume if resume is not None else _seq(request.query.get("cursor"), "cursor")
    feed = services(request).feed
    if cursor is None:
        cursor = await feed.store.last_seq(account)
    batches = await feed.open(actor, account, after=cursor, request_id=request_id(request))
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a buffering proxy would hold the events back
    })  # fmt: skip
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n\n".encode())
    await _pump(response, batches, feed.lifetime_seconds)
    return response


async def _pump(
    response: web.StreamResponse, batches: AsyncIterator[list[StoredChange]], lifetime: float
) -> None:
    try:
        # Bounded: the client reconnects with Last-Event-ID (an event cut short by the timer
        # has no closing blank line, so EventSource drops it and asks for it again).
        async with asyncio.timeout(lifetime):
            async for batch in batches:
                text = "".join(event_text(c) for c in batch) if batch else ": heartbeat\n\n"
                await response.write(text.encode())
    except TimeoutError:
        pass
    except ConnectionError:
        return  # the client went away; nothing more to send
    await response.write_eof()


async def changes_stream(request: web.Request) -> web.StreamResponse:
    return await stream_changes(request, caller_of(request).actor, account_id(request))


_CURSOR = QueryParam("cursor", {"type": "string", "pattern": SEQ.pattern},
                     "the last seq seen (default: the start)")  # fmt: skip
_LIMIT = QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                    f"at most this many changes (default {MAX_PAGE})")  # fmt: skip

ROUTES = [
    RouteSpec("GET", "/v1/accounts/{account_id}/changes", list_changes,
              "My account's change feed after a cursor (ids only, in order)", "accounts", USER,
              response=ref("ChangePage"), errors=(400, 403, 422, 503), query=(_CURSOR, _LIMIT),
              description="Poll with `cursor` = the previous `nextCursor`. Recorded as a "
              "transfer of the feed (one audit event per page)."),
    RouteSpec("GET", "/v1/accounts/{account_id}/changes/stream", changes_stream,
              "My account's change feed as server-sent events", "accounts", USER,
              response_type="text/event-stream", errors=(400, 403, 422, 503),
              query=(QueryParam("cursor", {"type": "string", "pattern": SEQ.pattern},
                                "start after this seq (default: from now on)"),),
              description="Each event: `id` = seq (reconnect with `Last-Event-ID` to resume), "
              "`event: change`, `data` = the change's JSON; comments as heartbeats. One audit "
              "event when the stream opens covers everything it delivers; it ends after "
              "`unlinked`."),
]  # fmt: skip
