"""Browser sessions: the platform's JWT, presented once, exchanged for a signed session cookie.

The platform sends its user to `/app/signin` with the same short-lived JWT it gives API callers.
The token is verified by the API's own `TokenVerifier` and then forgotten: the browser keeps only
a session cookie (HttpOnly, SameSite=Lax, Secure and `__Host-` when served over TLS) that is a
JWT signed under a key derived from CONNECTOR_AUDIT_HASH_KEY for this one use, carrying the
caller, a random CSRF token and an expiry (CONNECTOR_WEB_SESSION_MINUTES). Every worker derives
the same key, so a session made by one worker is good at another.

Signing out clears the cookie and ends the session id in this process until it would have
expired anyway (a copied cookie replayed at another worker lives at most its remaining minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import jwt
from aiohttp import web

from connector.clock import Clock, system_clock
from connector.settings import Settings
from connector.web.auth import Caller, Role, TokenVerifier
from connector.webclient.ended import EndedSessions

_LABEL = b"connector web session v1"
_ALGORITHM = "HS256"
PLAIN_COOKIE = "connector_session"
# `__Host-` cookies must be Secure, have Path=/ and no Domain: no subdomain can plant one.
TLS_COOKIE = "__Host-connector_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class SessionRefusedError(Exception):
    """The request's session or CSRF token is missing, forged, expired or cross-site."""


@dataclass(frozen=True, slots=True)
class Session:
    caller: Caller
    csrf: str  # the per-session token every state change must carry
    sid: str
    expires: int  # epoch seconds


class Sessions:
    def __init__(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        *,
        clock: Clock = system_clock,
        ended: EndedSessions | None = None,
    ) -> None:
        key = settings.audit_hash_key.encode("utf-8")
        self._key = hmac.new(key, _LABEL, hashlib.sha256).digest()
        self._seconds = settings.web_session_minutes * 60
        self._tls_base = settings.public_base_url.startswith("https://")
        self._verifier = verifier
        self._clock = clock
        self.ended = ended or EndedSessions(clock=clock)

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def sign_in(self, platform_token: str) -> tuple[Session, str]:
        """A new session for the caller the platform's token names (401 problem if it is bad)."""
        caller = self._verifier.caller(f"Bearer {platform_token}")
        now = self._now()
        session = Session(
            caller, secrets.token_urlsafe(32), secrets.token_urlsafe(16), now + self._seconds
        )
        claims = {"sub": caller.sub, "role": caller.role.value, "csrf": session.csrf,
                  "sid": session.sid, "iat": now, "exp": session.expires}  # fmt: skip
        return session, jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def read(self, request: web.Request) -> Session | None:
        """The request's session, or None (no cookie, forged, expired or signed out)."""
        value = request.cookies.get(TLS_COOKIE) or request.cookies.get(PLAIN_COOKIE)
        if not value or len(value) > 4096:
            return None
        required = ["exp", "sub", "role", "csrf", "sid"]
        try:
            # Expiry is checked below against the injectable clock, not PyJWT's wall clock.
            claims = jwt.decode(value, self._key, algorithms=[_ALGORITHM],
                                options={"require": required, "verify_exp": False})  # fmt: skip
        except jwt.PyJWTError:
            return None
        if not isinstance(claims["exp"], int) or claims["exp"] <= self._now():
            return None
        sub, role, csrf, sid = (claims[k] for k in ("sub", "role", "csrf", "sid"))
        # Only this service signs these, but a type check costs nothing.
        if not (isinstance(sub, str) and isinstance(csrf, str) and isinstance(sid, str)):
            return None
        if role not in set(Role) or sid in self.ended:
            return None
        return Session(Caller(sub, Role(role)), csrf, sid, int(claims["exp"]))

    async def sign_out(self, session: Session) -> None:
        """Refused from now on by every worker and instance (see `ended`), until it expires."""
        await self.ended.add(session.sid, session.expires)

    def _secure(self, request: web.Request) -> bool:
        return request.secure or self._tls_base

    def set_cookie(self, request: web.Request, response: web.StreamResponse, value: str) -> None:
        secure = self._secure(request)
        response.set_cookie(
            TLS_COOKIE if secure else PLAIN_COOKIE, value, max_age=self._seconds, path="/",
            httponly=True, secure=secure, samesite="Lax",
        )  # fmt: skip

    def clear_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        secure = self._secure(request)
        response.del_cookie(TLS_COOKIE if secure else PLAIN_COOKIE, path="/", secure=secure,
                            httponly=True, samesite="Lax")  # fmt: skip


def check_csrf(request: web.Request, session: Session, sent: str | None) -> None:
    """A state change must carry the session's token and come from this origin."""
    token = request.headers.get(CSRF_HEADER) or sent
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise SessionRefusedError("the form's security token is missing or wrong")
    # Browsers say where a request came from; a cross-site one is refused even with a token.
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise SessionRefusedError("the request came from another site")
