"""RefreshingTokenSource against the emulator's token endpoint, over MemoryCredentialStore."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from audit.memory import MemoryAuditLog
from audit.vocab import Action
from connector.accounts.credentials import RefreshingTokenSource
from connector.emulator.server import Emulator
from connector.errors import AccountNotLinkedError, NeedsRelinkError, TokenEndpointError
from connector.policy.authority import Authority
from connector.policy.recorder import Recorder
from connector.ports import StoredCredentials
from connector.testing.credentials import MemoryCredentialStore
from connector.testing.memory import StaticAccountOwners
from tests.linking.conftest import FAST, READ, SEND, actions, refresh_calls


def make_source(
    emu: Emulator,
    session: aiohttp.ClientSession,
    store: MemoryCredentialStore,
    log: MemoryAuditLog,
    token_uri: str | None = None,
) -> RefreshingTokenSource:
    return RefreshingTokenSource(
        store,
        token_uri=token_uri or emu.token_uri,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        session=session,
        authority=Authority(Recorder(log), StaticAccountOwners()),
        retry_delays=FAST,
    )


def link(emu: Emulator, store: MemoryCredentialStore, *, expires_in: int = 3599) -> str:
    issued = emu.issue_tokens(emu.users[0], [READ, SEND])
    store.put(
        "acct1",
        StoredCredentials(
            refresh_token=issued["refresh_token"],
            access_token=issued["access_token"],
            expiry=datetime.now(UTC) + timedelta(seconds=expires_in),
            scopes=frozenset(issued["scope"].split()),
        ),
    )
    return str(issued["access_token"])


async def test_fresh_token_is_served_without_refresh(emu, session, audit_log):
    """A token far from expiry comes from the store; the token endpoint is not called."""
    store = MemoryCredentialStore()
    original = link(emu, store)
    before = refresh_calls(emu)
    token = await make_source(emu, session, store, audit_log).access_token("acct1")
    assert token.token == original
    assert token.scopes == {READ, SEND}
    assert refresh_calls(emu) == before
    assert audit_log.events == []


async def test_refreshes_inside_margin_and_saves(emu, session, audit_log):
    """A token expiring within the margin is refreshed, saved and the refresh audited."""
    store = MemoryCredentialStore()
    original = link(emu, store, expires_in=60)
    token = await make_source(emu, session, store, audit_log).access_token("acct1")
    assert token.token != original
    assert token.expiry is not None
    assert token.expiry > datetime.now(UTC) + timedelta(minutes=50)
    assert (await store.load("acct1")).access_token == token.token
    assert actions(audit_log) == [Action.ACCOUNT_TOKEN_REFRESHED]
    assert audit_log.events[0].account_id == "acct1"


async def test_concurrent_forced_refresh_makes_one_call(emu, session, audit_log):
    """Twenty concurrent callers forcing a refresh cause exactly one token-endpoint call."""
    store = MemoryCredentialStore()
    link(emu, store)
    source = make_source(emu, session, store, audit_log)
    before = refresh_calls(emu)
    tokens = await asyncio.gather(
        *(source.access_token("acct1", force_refresh=True) for _ in range(20))
    )
    assert refresh_calls(emu) - before == 1
    assert source.refresh_count == 1
    assert len({t.token for t in tokens}) == 1


async def test_concurrent_expiry_refresh_makes_one_call(emu, session, audit_log):
    """Twenty concurrent callers seeing an expiring token cause exactly one refresh."""
    store = MemoryCredentialStore()
    link(emu, store, expires_in=10)
    source = make_source(emu, session, store, audit_log)
    before = refresh_calls(emu)
    tokens = await asyncio.gather(*(source.access_token("acct1") for _ in range(20)))
    assert refresh_calls(emu) - before == 1
    assert len({t.token for t in tokens}) == 1


async def test_revoked_grant_marks_needs_relink(emu, session, audit_log):
    """invalid_grant marks the account, audits failure and relink, raises with no retry."""
    store = MemoryCredentialStore()
    link(emu, store)
    emu.revoke_user(emu.users[0])
    source = make_source(emu, session, store, audit_log)
    with pytest.raises(NeedsRelinkError) as info:
        await source.access_token("acct1", force_refresh=True)
    assert info.value.account_id == "acct1"
    assert source.refresh_count == 1
    assert store.relink_reason("acct1") == "invalid_grant"
    assert actions(audit_log) == [Action.ACCOUNT_REFRESH_FAILED, Action.ACCOUNT_NEEDS_RELINK]
    assert audit_log.events[0].reasons == ("invalid_grant",)
    with pytest.raises(NeedsRelinkError):
        await source.access_token("acct1")


async def test_transient_errors_are_retried_then_succeed(emu, session, audit_log):
    """Two 503s from the token endpoint are retried; the third attempt succeeds."""
    store = MemoryCredentialStore()
    link(emu, store)
    async with flaky_token_endpoint(emu, session, failures=2) as (uri, calls):
        source = make_source(emu, session, store, audit_log, token_uri=uri)
        token = await source.access_token("acct1", force_refresh=True)
    assert calls["n"] == 3
    assert (await store.load("acct1")).access_token == token.token
    assert actions(audit_log) == [Action.ACCOUNT_TOKEN_REFRESHED]


async def test_transient_errors_give_up_after_bound(emu, session, audit_log):
    """A token endpoint that keeps failing is tried three times, then audited and raised."""
    store = MemoryCredentialStore()
    link(emu, store)
    async with flaky_token_endpoint(emu, session, failures=99) as (uri, calls):
        source = make_source(emu, session, store, audit_log, token_uri=uri)
        with pytest.raises(TokenEndpointError) as info:
            await source.access_token("acct1", force_refresh=True)
    assert calls["n"] == 3
    assert info.value.error == "unavailable"
    assert actions(audit_log) == [Action.ACCOUNT_REFRESH_FAILED]
    assert store.relink_reason("acct1") is None


async def test_unknown_account_raises_not_linked(emu, session, audit_log):
    """An account the store does not know raises AccountNotLinkedError."""
    source = make_source(emu, session, MemoryCredentialStore(), audit_log)
    with pytest.raises(AccountNotLinkedError):
        await source.access_token("nobody")


def test_reprs_hide_tokens():
    """Credentials and tokens render without their secret values."""
    creds = StoredCredentials("1//refresh-canary", "ya29.access-canary", None, frozenset({READ}))
    from connector.ports import AccessToken

    text = repr(creds) + repr(AccessToken("ya29.access-canary", None, frozenset()))
    assert "canary" not in text
    assert "[redacted]" in text


@contextlib.asynccontextmanager
async def flaky_token_endpoint(
    emu: Emulator, session: aiohttp.ClientSession, *, failures: int
) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A local token endpoint answering 503 `temporarily_unavailable` `failures` times, then
    forwarding to the emulator's."""
    calls = {"n": 0}

    async def token(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= failures:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        form = dict(await request.post())
        async with session.post(emu.token_uri, data=form) as upstream:
            return web.json_response(await upstream.json(), status=upstream.status)

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/token", calls
    finally:
        await runner.cleanup()
