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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import aiohttp

from audit.event import Actor, AuditEvent
from audit.sink import AuditSink
from audit.vocab import Action, ActorKind, Decision, Outcome, Severity
from connector.accounts.endpoints import DEFAULT_RETRY_DELAYS, OAuthEndpoints, TokenResponse
from connector.errors import AccountNotLinkedError, NeedsRelinkError, TokenEndpointError
from connector.ports import AccessToken, CredentialStore, StoredCredentials

__all__ = [
    "MemoryCredentialStore",
    "RefreshTokenSink",
    "RefreshingTokenSource",
    "TokenEndpointError",
]

SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, "connector.token_source")


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        audit: AuditSink | None = None,
        clock: Callable[[], datetime] = utc_now,
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
        self._audit = audit
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
            await self._record(account_id, Action.ACCOUNT_REFRESH_FAILED, _reason(exc.error))
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

    async def _record(self, account_id: str, action: Action, reason: str | None) -> None:
        if self._audit is None:
            return
        failed = reason is not None
        await self._audit.append(
            AuditEvent(
                actor=SYSTEM_ACTOR,
                action=action,
                decision=Decision.ALLOW,
                outcome=Outcome.ERROR if failed else Outcome.OK,
                account_id=account_id,
                reasons=(reason,) if reason else (),
                error_code=reason,
                severity=Severity.WARNING if failed else Severity.INFO,
            )
        )


def _reason(error: str) -> str:
    """An OAuth error code as an audit reason code (lower-case identifier alphabet)."""
    cleaned = "".join(c if c.isalnum() or c in "_.:-" else "_" for c in error.lower())
    return cleaned[:64] or "unknown"


def _access(creds: StoredCredentials) -> AccessToken:
    assert creds.access_token is not None
    return AccessToken(creds.access_token, creds.expiry, creds.scopes)


@dataclass(slots=True)
class _MemoryEntry:
    creds: StoredCredentials
    relink_reason: str | None = None

    def __repr__(self) -> str:
        return f"_MemoryEntry(scopes={sorted(self.creds.scopes)}, relink={self.relink_reason!r})"


class MemoryCredentialStore:
    """An in-memory `CredentialStore` (and `RefreshTokenSink`) for tests and the demo.

    Real code with the same contract as the vault store: unknown accounts raise
    `AccountNotLinkedError`, accounts marked for relinking raise `NeedsRelinkError`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _MemoryEntry] = {}

    def __repr__(self) -> str:
        return f"MemoryCredentialStore(accounts={len(self._entries)})"

    def put(self, account_id: str, creds: StoredCredentials) -> None:
        """Link (or relink) an account with fresh credentials."""
        self._entries[account_id] = _MemoryEntry(creds)

    def remove(self, account_id: str) -> bool:
        return self._entries.pop(account_id, None) is not None

    def relink_reason(self, account_id: str) -> str | None:
        entry = self._entries.get(account_id)
        return entry.relink_reason if entry else None

    async def load(self, account_id: str) -> StoredCredentials:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        if entry.relink_reason is not None:
            raise NeedsRelinkError(account_id, f"marked for relinking ({entry.relink_reason})")
        return entry.creds

    async def save_access_token(
        self, account_id: str, access_token: str, expiry: datetime | None, scopes: frozenset[str]
    ) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.creds = replace(entry.creds, access_token=access_token, expiry=expiry, scopes=scopes)

    async def replace_refresh_token(self, account_id: str, refresh_token: str) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.creds = replace(entry.creds, refresh_token=refresh_token)

    async def mark_needs_relink(self, account_id: str, reason: str) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.relink_reason = reason
