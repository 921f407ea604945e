"""Fixtures: the emulator on loopback and a real refreshing token source (the aiohttp `session`
is the root conftest's).

`EmulatorTokenSource` is a small but real `TokenSource`: it refreshes against the emulator's
token endpoint with a refresh token, single-flight per account (lock + re-check), and turns
`invalid_grant` into `NeedsRelinkError` — what `connector/credentials.py` does in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.errors import NeedsRelinkError
from connector.gmail import GmailClient, QuotaPolicy, RetryPolicy
from connector.ports import AccessToken

FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)


class EmulatorTokenSource:
    def __init__(self, session: aiohttp.ClientSession, emu: Emulator) -> None:
        self._session = session
        self._emu = emu
        self._refresh_tokens: dict[str, str] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._generation: dict[str, int] = {}
        self.refreshes = 0

    def link(self, email: str, scopes: tuple[str, ...] | None = None) -> str:
        issued = self._emu.issue_tokens(email, scopes)
        self._refresh_tokens[email] = issued["refresh_token"]
        self._tokens[email] = AccessToken(
            issued["access_token"],
            datetime.now(UTC) + timedelta(seconds=issued["expires_in"]),
            frozenset(issued["scope"].split()),
        )
        return email

    async def access_token(self, account_id: str, *, force_refresh: bool = False) -> AccessToken:
        current = self._tokens.get(account_id)
        if current is not None and not force_refresh and not self._stale(current):
            return current
        seen = self._generation.get(account_id, 0)
        async with self._locks.setdefault(account_id, asyncio.Lock()):
            # Re-check: another caller may have refreshed while this one waited.
            if self._generation.get(account_id, 0) != seen:
                return self._tokens[account_id]
            token = await self._refresh(account_id)
            self._tokens[account_id] = token
            self._generation[account_id] = seen + 1
            return token

    @staticmethod
    def _stale(token: AccessToken) -> bool:
        return token.expiry is not None and token.expiry - datetime.now(UTC) < timedelta(minutes=1)

    async def _refresh(self, account_id: str) -> AccessToken:
        self.refreshes += 1
        form = {
            "grant_type": "refresh_token",
            "client_id": self._emu.client_id,
            "client_secret": self._emu.client_secret,
            "refresh_token": self._refresh_tokens[account_id],
        }
        async with self._session.post(self._emu.token_uri, data=form) as response:
            body: dict[str, Any] = await response.json()
        if body.get("error") == "invalid_grant":
            raise NeedsRelinkError(account_id, "the refresh token was revoked or expired")
        if response.status != 200:
            raise RuntimeError(f"token endpoint answered {response.status}")
        return AccessToken(
            body["access_token"],
            datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            frozenset(str(body.get("scope", "")).split()),
        )


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A seeded emulator (2 users, 40 messages each) on a loopback port."""
    async with run_emulator(EmulatorConfig(seed="gmail-tests", users=2, messages_per_user=40)) as e:
        yield e


@pytest.fixture
def tokens(session: aiohttp.ClientSession, emu: Emulator) -> EmulatorTokenSource:
    return EmulatorTokenSource(session, emu)


@pytest.fixture
def user(emu: Emulator, tokens: EmulatorTokenSource) -> str:
    """The first seeded user, linked with the default scopes; doubles as the account id."""
    return tokens.link(emu.users[0])


ClientFactory = Callable[..., GmailClient]


@pytest.fixture
def make_client(
    emu: Emulator, tokens: EmulatorTokenSource, session: aiohttp.ClientSession
) -> ClientFactory:
    def make(**kwargs: Any) -> GmailClient:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("send_resolution_delays", (0.0,))
        quota: QuotaPolicy | None = kwargs.pop("quota", None)
        return GmailClient(emu.gmail_endpoint, tokens, session, quota=quota, **kwargs)

    return make


@pytest.fixture
def client(make_client: ClientFactory) -> GmailClient:
    return make_client()
