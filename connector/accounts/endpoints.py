"""Google's OAuth token, revoke and userinfo endpoints over aiohttp, with bounded retries.

Why aiohttp and not google-auth's `Credentials.refresh` or oauthlib's `fetch_token`: both send
with `requests`, synchronously, so in this async service they would block the event loop or need
a thread per call; both read process-wide environment switches (`OAUTHLIB_INSECURE_TRANSPORT`,
`OAUTHLIB_RELAX_TOKEN_SCOPE`); and neither shares the service's session, timeouts or retry
policy. The wire format is small and fixed (RFC 6749 sections 4.1.3, 5.1, 5.2, 6; RFC 7009), so
it is written once here. Retries follow google-auth's `_can_retry`: 408/429/5xx and the bodies
`internal_failure`, `server_error`, `temporarily_unavailable`; nothing else is retried.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from connector.errors import TokenEndpointError

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.2, 1.0)  # two retries: three attempts in all
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=20)


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response. `__repr__` is custom so tokens never reach a log."""

    access_token: str
    expiry: datetime | None
    scopes: frozenset[str] | None  # None when the response named no scope
    refresh_token: str | None

    def __repr__(self) -> str:
        scopes = sorted(self.scopes) if self.scopes is not None else None
        return (
            f"TokenResponse(access_token=[redacted], expiry={self.expiry!r}, scopes={scopes!r}, "
            f"refresh_token={'[redacted]' if self.refresh_token else None})"
        )


class RevokeOutcome(StrEnum):
    REVOKED = "revoked"  # Google answered 200
    ALREADY_INVALID = "already_invalid"  # 400 invalid_token: nothing left to revoke
    FAILED = "failed"  # every attempt failed; the grant may still be live at Google
    NOT_ATTEMPTED = "not_attempted"  # there was no token to revoke


def _parse_token_body(body: Mapping[str, Any], now: datetime) -> TokenResponse:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenEndpointError("invalid_response", 200, "no access_token in the response")
    expires_in = body.get("expires_in")  # int or string, as google-auth accepts
    expiry = now + timedelta(seconds=int(expires_in)) if expires_in is not None else None
    scope = body.get("scope")
    refresh = body.get("refresh_token")
    return TokenResponse(
        access_token=access,
        expiry=expiry,
        scopes=frozenset(str(scope).split()) if scope is not None else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


async def _read_json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    text = await response.text()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(eq=False)
class OAuthEndpoints:
    """The three Google OAuth endpoints the connector calls, for one OAuth client."""

    session: aiohttp.ClientSession = field(repr=False)
    _: KW_ONLY
    token_uri: str
    revoke_uri: str = field(repr=False)
    userinfo_uri: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)  # a secret: never in logs or tracebacks
    retry_delays: Sequence[float] = field(default=DEFAULT_RETRY_DELAYS, repr=False)

    def __post_init__(self) -> None:
        self.retry_delays = tuple(self.retry_delays)  # the caller's list may change later

    async def refresh(self, refresh_token: str, now: datetime) -> TokenResponse:
        """Exchange a refresh token (RFC 6749 section 6); `invalid_grant` is terminal."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _parse_token_body(await self._token_post(form), now)

    async def exchange_code(
        self, code: str, *, redirect_uri: str, code_verifier: str | None, now: datetime
    ) -> TokenResponse:
        """Exchange an authorization code with its PKCE verifier (RFC 7636 section 4.5)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return _parse_token_body(await self._token_post(form), now)

    async def _token_post(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        last: TokenEndpointError | None = None
        for delay in (*self.retry_delays, None):
            try:
                async with self.session.post(
                    self.token_uri, data=form, timeout=REQUEST_TIMEOUT
                ) as response:
                    body = await _read_json(response)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = TokenEndpointError("unavailable", None, type(exc).__name__)
            else:
                if status == 200:
                    return body
                error = str(body.get("error") or f"http_{status}")
                last = TokenEndpointError(error, status, str(body.get("error_description", "")))
                if status not in RETRYABLE_STATUS and error not in RETRYABLE_ERRORS:
                    raise last
            if delay is None:
                break
            await asyncio.sleep(delay)
        assert last is not None
        raise TokenEndpointError("unavailable", last.status, f"gave up after retries: {last}")

    async def revoke(self, token: str) -> RevokeOutcome:
        """Revoke a token (RFC 7009); revoking the refresh token ends the whole grant."""
        for delay in (*self.retry_delays, None):
            try:
                async with self.session.post(
                    self.revoke_uri, data={"token": token}, timeout=REQUEST_TIMEOUT
                ) as response:
                    body = await _read_json(response)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status, body = 0, {}
            if status == 200:
                return RevokeOutcome.REVOKED
            if status == 400 and body.get("error") in {"invalid_token", "invalid_request"}:
                return RevokeOutcome.ALREADY_INVALID
            if delay is None:
                break
            await asyncio.sleep(delay)
        return RevokeOutcome.FAILED

    async def userinfo_email(self, access_token: str) -> str | None:
        """The verified address of the account the token belongs to, or None if not given."""
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            async with self.session.get(
                self.userinfo_uri, headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                if response.status != 200:
                    return None
                body = await _read_json(response)
        except (aiohttp.ClientError, TimeoutError):
            return None
        email = body.get("email")
        return email.lower() if isinstance(email, str) and email else None
