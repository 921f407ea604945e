"""Per-request values handlers pass to services: the access context and the services."""

from __future__ import annotations

import functools

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
    key, ip = services(request).hash_key, request.remote or ""
    agent = request.headers.get("User-Agent", "")
    return (_remembered if len(agent) <= MAX_REMEMBERED_AGENT else _source)(key, ip, agent)


def _source(key: bytes, ip: str, agent: str) -> Source:
    return Source(
        ip_hash=keyed_hash(key, ip) if ip else None,
        user_agent_hash=keyed_hash(key, agent) if agent else None,
    )


# A client sends from the same address with the same agent call after call, and the two HMACs
# are a pure function of (key, ip, agent): the most recent are remembered (a Source is
# immutable). Bounded in entries and, through the agent's length, in memory.
MAX_REMEMBERED_AGENT = 256
_remembered = functools.lru_cache(maxsize=2048)(_source)


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
