"""Credentials: one refresh for many concurrent callers, dead grants, persistent 401s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import NeedsRelinkError
from connector.gmail import errors
from connector.ports import FETCH_MINIMAL, AccessToken


async def test_one_refresh_for_many_concurrent_callers(emu, user, client, tokens):
    """After the access token expires, 30 concurrent calls succeed with a single refresh."""
    listing = await client.list_messages(user, max_results=30)
    ids = [m["id"] for m in listing["messages"]]
    emu.expire_access_tokens(user)
    refreshes_before = tokens.refreshes
    results = await asyncio.gather(*(client.get_message(user, mid, FETCH_MINIMAL) for mid in ids))
    assert [r["id"] for r in results] == ids
    assert tokens.refreshes == refreshes_before + 1


async def test_batch_refreshes_once_on_401(emu, user, client, tokens):
    """A batch whose token expired is retried after one refresh and returns every part."""
    listing = await client.list_messages(user, max_results=60)
    ids = [m["id"] for m in listing["messages"]]
    emu.expire_access_tokens(user)
    refreshes_before = tokens.refreshes
    results = await client.get_messages(user, ids)
    assert [r["id"] for r in results] == ids
    assert tokens.refreshes == refreshes_before + 1


async def test_invalid_grant_raises_needs_relink(emu, user, client, tokens):
    """A revoked grant surfaces as NeedsRelinkError from the token source, not retried."""
    emu.revoke_user(user)
    before = tokens.refreshes
    with pytest.raises(NeedsRelinkError) as relink:
        await client.get_profile(user)
    assert relink.value.account_id == user
    assert tokens.refreshes == before + 1


class BogusTokens:
    """A token source whose tokens Gmail never accepts; counts forced refreshes."""

    def __init__(self) -> None:
        self.forced = 0
        self.serial = 0

    async def access_token(self, account_id: str, *, force_refresh: bool = False) -> AccessToken:
        if force_refresh:
            self.forced += 1
            self.serial += 1
        return AccessToken(
            f"bogus-{self.serial}", datetime.now(UTC) + timedelta(hours=1), frozenset()
        )


async def test_persistent_401_is_auth_error_after_one_refresh(emu, session):
    """A 401 that survives one forced refresh raises AuthError; exactly one refresh is tried."""
    from connector.gmail import GmailClient

    bogus = BogusTokens()
    client = GmailClient(emu.gmail_endpoint, bogus, session)
    before = emu.stats.requests["getProfile"]
    with pytest.raises(errors.AuthError) as failed:
        await client.get_profile("someone")
    assert failed.value.reason == "authError"
    assert bogus.forced == 1
    assert emu.stats.requests["getProfile"] == before + 2
