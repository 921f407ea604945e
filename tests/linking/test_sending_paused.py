"""Gmail's sending limit reaches the platform: one `sending_paused` change in the account's feed
per pause (not one per refused send), and the send still fails as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from audit.event import Actor
from audit.vocab import ActorKind, Purpose
from connector.accounts.changes import Change, ChangeKind
from connector.accounts.sync_store import SyncStore
from connector.clock import system_clock
from connector.gmail.errors import SendingPausedError
from connector.inbox.send_keys import SqlSendKeys
from connector.inbox.service import Draft, Inbox
from connector.policy.access import AccessContext
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.testing.mailbox import FakeMailbox
from connector.testing.memory import MemoryBasisFacts, MemoryUsageCounter
from tests.linking.conftest import HASH_KEY, Linking, link_account


def _paused(until: datetime) -> SendingPausedError:
    return SendingPausedError("User-rate limit exceeded (Mail sending)", until=until,
                              status=429, reason="rateLimitExceeded")  # fmt: skip


async def test_a_pause_is_reported_once_in_the_feed(linking: Linking) -> None:
    w = linking
    account = await link_account(w)
    mailbox = FakeMailbox()
    gate = Gate(mailbox, Recorder(w.audit), w.accounts, MemoryBasisFacts(),
                MemoryUsageCounter(), hash_key=HASH_KEY)  # fmt: skip
    store = SyncStore(w.engine)

    async def report(account_id: str) -> None:
        await store.append(account_id, [Change(ChangeKind.SENDING_PAUSED)])

    inbox = Inbox(gate, send_keys=SqlSendKeys(w.engine, system_clock), on_sending_paused=report)
    ctx = AccessContext(Actor(ActorKind.USER, "user-1"), Purpose.USER_FEATURE)
    draft = Draft(to=["bob@example.com"], subject="Hello", text="Hi")
    until = datetime.now(UTC) + timedelta(hours=3)
    for _ in range(2):  # the same pause twice: reported once
        mailbox.fail_next = _paused(until)
        with pytest.raises(SendingPausedError):
            await inbox.send_once(ctx, account.id, draft)
    mailbox.fail_next = _paused(until + timedelta(hours=24))  # a new pause: reported again
    with pytest.raises(SendingPausedError):
        await inbox.send_once(ctx, account.id, draft)
    kinds = [c.change.kind for c in await store.changes(account.id)]
    assert kinds == [ChangeKind.SENDING_PAUSED, ChangeKind.SENDING_PAUSED]
