"""Access tokens for linked accounts: refreshed early, once per account, dead grants surfaced.

`RefreshingTokenSource` implements `connector.ports.TokenSource` over any `CredentialStore`
(the encrypted vault store in production, `MemoryCredentialStore` in tests). Refreshing is
serialized per account: an `asyncio.Lock` per account plus a re-check after acquiring it, so N
concurrent callers cause one token-endpoint call. The store is read on every call (no in-process
token cache) so an unlink or a refresh made by another process is seen at once; a store read is
one indexed row and one AES-GCM decryption, small beside a Gmail round trip.

Refresh is a plain aiohttp POST (`connector.accounts.endpoints`), not google-auth's
`Credentials.refresh`, which is synchronous (`requests`) and would block the event loop.

`invalid_grant` is terminal: the store marks the account "needs relinking", the audit log
records ACCOUNT_REFRESH_FAILED and ACCOUNT_NEEDS_RELINK, and `NeedsRelinkError` is raised with
no retry. Transient endpoint failures are retried a bounded number of times, then surface as
`TokenEndpointError` (audited as ACCOUNT_REFRESH_FAILED).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable

import aiohttp

from audit.event import Actor
from audit.vocab import Action, ActorKind
from connector.accounts.endpoints import DEFAULT_RETRY_DELAYS, OAuthEndpoints, TokenResponse
from connector.accounts.events import reason_code
from connector.clock import Clock, system_clock
from connector.errors import NeedsRelinkError, TokenEndpointError
from connector.policy.authority import Authority
from connector.policy.recorder import Change
from connector.policy.vocab import Operation
from connector.ports import AccessToken, CredentialStore, StoredCredentials

__all__ = [
    "RefreshTokenSink",
    "RefreshingTokenSource",
]

SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, "connector.token_source")



@runtime_checkable
class RefreshTokenSink(Protocol):
    """Optional store capability: keep a refresh token the endpoint rotated.

    Google normally keeps the refresh token on refresh; when a response does carry a new one
    (RFC 6749 section 6 allows it), a store with this method saves it.
    """

    async def replace_refresh_token(self, account_id: str, refresh_token: str) -> None: ...


class RefreshingTokenSource:
    """A `TokenSource` that refreshes from the store's refresh token (see module docstring)."""

    def __init__(
        self,
        store: CredentialStore,
        *,
        token_uri: str,
        client_id: str,
        client_secret: str,
        session: aiohttp.ClientSession,
        refresh_margin: timedelta = timedelta(minutes=5),
        authority: Authority | None = None,
        clock: Clock = system_clock,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self._store = store
        self._endpoints = OAuthEndpoints(
            session,
            token_uri=token_uri,
            revoke_uri="",
            userinfo_uri="",
            client_id=client_id,
            client_secret=client_secret,
            retry_delays=retry_delays,
        )
        self._margin = refresh_margin
        self._authority = authority
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        # Bumped after each refresh; a forced caller that waited on the lock while another
        # refreshed sees the change and takes the new token instead of refreshing again.
        self._generation: dict[str, int] = {}
        self.refresh_count = 0  # token-endpoint refreshes made by this instance

    def __repr__(self) -> str:
        return f"RefreshingTokenSource(token_uri={self._endpoints.token_uri!r})"

    async def access_token(self, account_id: str, *, force_refresh: bool = False) -> AccessToken:
        if not force_refresh:
            creds = await self._store.load(account_id)
            if self._fresh(creds):
                return _access(creds)
        seen = self._generation.get(account_id, 0)
        async with self._locks.setdefault(account_id, asyncio.Lock()):
            creds = await self._store.load(account_id)
            if force_refresh:
                if self._generation.get(account_id, 0) != seen and self._fresh(creds):
                    return _access(creds)
            elif self._fresh(creds):
                return _access(creds)
            token = await self._refresh(account_id, creds)
            self._generation[account_id] = self._generation.get(account_id, 0) + 1
            return token

    def _fresh(self, creds: StoredCredentials) -> bool:
        if creds.access_token is None:
            return False
        # Unknown expiry: trust the token until a 401 forces a refresh.
        return creds.expiry is None or creds.expiry - self._clock() > self._margin

    async def _refresh(self, account_id: str, creds: StoredCredentials) -> AccessToken:
        await self._authorize(account_id)
        self.refresh_count += 1
        try:
            response = await self._endpoints.refresh(creds.refresh_token, self._clock())
        except TokenEndpointError as exc:
            if exc.is_invalid_grant:
                await self._store.mark_needs_relink(account_id, "invalid_grant")
                await self._record(account_id, Action.ACCOUNT_REFRESH_FAILED, "invalid_grant")
                await self._record(account_id, Action.ACCOUNT_NEEDS_RELINK, "invalid_grant")
                raise NeedsRelinkError(
                    account_id, "Google reports the refresh token expired or revoked"
                ) from None
            await self._record(account_id, Action.ACCOUNT_REFRESH_FAILED, reason_code(exc.error))
            raise
        scopes = response.scopes if response.scopes is not None else creds.scopes
        await self._save(account_id, response, scopes)
        await self._record(account_id, Action.ACCOUNT_TOKEN_REFRESHED, None)
        return AccessToken(response.access_token, response.expiry, scopes)

    async def _save(self, account_id: str, response: TokenResponse, scopes: frozenset[str]) -> None:
        await self._store.save_access_token(
            account_id, response.access_token, response.expiry, scopes
        )
        if response.refresh_token and isinstance(self._store, RefreshTokenSink):
            await self._store.replace_refresh_token(account_id, response.refresh_token)

    @staticmethod
    def _change(account_id: str, action: Action) -> Change:
        return Change(SYSTEM_ACTOR, Operation.TOKEN_REFRESH, action, account_id=account_id)

    async def _authorize(self, account_id: str) -> None:
        if self._authority is not None:
            await self._authority.authorize(
                self._change(account_id, Action.ACCOUNT_TOKEN_REFRESHED)
            )

    async def _record(self, account_id: str, action: Action, reason: str | None) -> None:
        if self._authority is None:
            return
        await self._authority.record(
            self._change(account_id, action), reasons=(reason,) if reason else (),
            failed=reason is not None, error_code=reason,
        )  # fmt: skip


def _access(creds: StoredCredentials) -> AccessToken:
    assert creds.access_token is not None
    return AccessToken(creds.access_token, creds.expiry, creds.scopes)
