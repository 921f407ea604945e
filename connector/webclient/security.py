"""The headers every web client answer carries: a strict Content-Security-Policy (no inline
script, nothing from other origins, framing only by CONNECTOR_WEB_FRAME_ANCESTORS), no referrer,
no sniffing, no caching of pages that show mail.

A mail body is a document of its own with a stricter policy still: no script at all (the CSP
`sandbox` directive, on top of the iframe's `sandbox` attribute), inline styles only, images
from `data:` only unless the user allowed remote content for that one message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from connector.settings import Settings

PREFIX = "/app"
_STATIC = f"{PREFIX}/static/"
Hook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def page_policy(settings: Settings) -> str:
    ancestors = " ".join(settings.web_frame_ancestors)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )


def mail_policy(remote_allowed: bool) -> str:
    images = "data: https: http:" if remote_allowed else "data:"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


def security_headers(settings: Settings) -> Hook:
    """An `on_response_prepare` hook for every answer under /app (error pages included)."""
    policy = page_policy(settings)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
            return
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.path.startswith(_STATIC):
            headers["Cache-Control"] = "no-store"

    return hook
