"""Lifecycle changes in the account's feed, on SQLite and PostgreSQL: a refused refresh
(invalid_grant) writes one `needs_relink`; unlink writes `unlinked` in its purge transaction,
which an open stream delivers before it ends and which housekeeping drops after its window."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from audit.event import Actor
from audit.vocab import Action, ActorKind, Decision
from connector.accounts.changes import ChangeKind
from connector.accounts.feed import ChangeFeed
from connector.accounts.scopes import Feature
from connector.accounts.sync_store import UNLINKED_KEPT, StoredChange, SyncStore
from connector.accounts.unlink import Unlinker
from connector.clock import system_clock
from connector.errors import AccessDenied, NeedsRelinkError
from tests.linking.conftest import FAST, link_account, link_config, start_and_consent

OWNER = Actor(ActorKind.USER, "user-1")


def _kinds(feed: list[StoredChange]) -> list[ChangeKind]:
    return [c.change.kind for c in feed]


async def test_invalid_grant_writes_one_needs_relink(linking):
    w = linking
    account = await link_account(w)
    store = SyncStore(w.engine)
    w.emu.revoke_user(w.emu.users[0])
    tokens = w.token_source()
    for _ in range(2):  # a second refusal of the same dead grant adds nothing
        with pytest.raises(NeedsRelinkError):
            await tokens.access_token(account.id, force_refresh=True)
    assert _kinds(await store.changes(account.id)) == [ChangeKind.NEEDS_RELINK]
    [page] = [await ChangeFeed(store, w.authority()).read(OWNER, account.id, after=0)]
    assert page.changes[0].as_json()["kind"] == "needs_relink"
    assert w.audit.events[-1].action is Action.ACCOUNT_CHANGES_READ


async def test_unlink_writes_unlinked_and_an_open_stream_delivers_it(linking):
    w = linking
    account = await link_account(w)
    feed = ChangeFeed(SyncStore(w.engine), w.authority(), poll_seconds=0.05)
    batches = await feed.open(OWNER, account.id, after=0)  # permitted while linked

    async def follow() -> list[ChangeKind]:
        seen: list[ChangeKind] = []
        async for batch in batches:
            seen += _kinds(batch)
        return seen  # the stream ends by itself after `unlinked`

    task = asyncio.create_task(follow())
    endpoints = link_config(w.emu).endpoints(w.session, FAST)
    receipt = await Unlinker(w.engine, w.vault, endpoints, w.authority()).unlink(
        account.id, user_id="user-1"
    )
    assert receipt.rows_deleted["accounts_change"] == 0
    async with asyncio.timeout(5):
        assert await task == [ChangeKind.UNLINKED]
    opened = [e for e in w.audit.events if e.action is Action.ACCOUNT_CHANGES_STREAMED]
    assert [e.decision for e in opened] == [Decision.ALLOW]
    # The account is gone, and its owner with it: a new read is refused (and recorded).
    with pytest.raises(AccessDenied):
        await feed.read(OWNER, account.id, after=0)
    assert w.audit.events[-1].decision is Decision.DENY


async def test_housekeeping_drops_unlinked_rows_after_their_window(linking):
    w = linking
    gone = await link_account(w)
    endpoints = link_config(w.emu).endpoints(w.session, FAST)
    await Unlinker(w.engine, w.vault, endpoints, w.authority()).unlink(gone.id, user_id="user-1")
    store = SyncStore(w.engine)
    assert await store.drop_unlinked() == 0  # still within the window
    assert _kinds(await store.changes(gone.id)) == [ChangeKind.UNLINKED]
    later = SyncStore(w.engine, clock=lambda: system_clock() + UNLINKED_KEPT + timedelta(hours=1))
    assert await later.drop_unlinked() == 1
    assert await store.changes(gone.id) == []


async def test_relink_with_other_features_writes_scopes_changed(linking):
    w = linking
    account = await link_account(w, (Feature.READ,))
    store = SyncStore(w.engine)

    async def relink(features: tuple[Feature, ...]) -> None:
        callback = await start_and_consent(w, features, account_id=account.id)
        assert callback.state is not None
        await w.service.complete_link(state=callback.state, code=callback.code, user_id="user-1")

    await relink((Feature.READ,))  # the same features again: nothing to report
    assert await store.changes(account.id) == []
    await relink((Feature.READ, Feature.SEND))
    assert _kinds(await store.changes(account.id)) == [ChangeKind.SCOPES_CHANGED]
