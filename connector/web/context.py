"""Per-request values handlers pass to services: the access context and the services."""

from __future__ import annotations

from aiohttp import web

from audit.event import Source
from audit.hashing import keyed_hash
from audit.vocab import Purpose
from connector.policy import AccessContext
from connector.web.keys import CALLER, REQUEST_ID, SERVICES
from connector.wiring import Services


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def source(request: web.Request) -> Source:
    """Where the request came from, as keyed hashes (IP addresses are personal data)."""
    key = services(request).hash_key
    ip = request.remote or ""
    agent = request.headers.get("User-Agent", "")
    return Source(
        ip_hash=keyed_hash(key, ip) if ip else None,
        user_agent_hash=keyed_hash(key, agent) if agent else None,
    )


def request_id(request: web.Request) -> str | None:
    return request.get(REQUEST_ID)


def access_context(
    request: web.Request, purpose: Purpose, *, support_case: str | None = None
) -> AccessContext:
    return AccessContext(
        actor=request[CALLER].actor,
        purpose=purpose,
        request_id=request_id(request),
        source=source(request),
        support_case=support_case,
    )
