"""Dormant accounts on a clock moved forward (SQLite and PostgreSQL): a notice first, then, still
inactive after the notice period, the connector itself unlinks the account (revoked at Google,
every row purged, `unlinked` in its feed, signed receipt, audited); activity in between cancels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from audit.event import Actor
from audit.receipts import ReceiptStatus, verify_receipt
from audit.signing import generate_key
from audit.trust import TrustedKeys
from audit.vocab import Action, ActorKind, Decision
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow, SyncStateRow
from connector.accounts.unlink import Unlinker
from connector.db import session_factory
from connector.policy.authority import Authority
from connector.policy.purge import PolicyPurger
from connector.policy.recorder import Recorder
from connector.rights.retention import SYSTEM, Retention
from tests.conftest import Clock
from tests.linking.conftest import FAST, link_account, link_config
from tests.rights.test_deletion import _rows_about

DAY = timedelta(days=1)


def _wire(w, clock: Clock, key=None) -> tuple[Retention, Unlinker]:  # noqa: ANN001
    endpoints = link_config(w.emu).endpoints(w.session, FAST)
    unlinker = Unlinker(w.engine, w.vault, endpoints, Authority(Recorder(w.audit, clock),
                        w.accounts, clock), purgers=[PolicyPurger()], clock=clock,
                        signing_key=key)  # fmt: skip
    retention = Retention(w.engine, Authority(Recorder(w.audit, clock), None, clock), clock=clock,
                          dormant_after=365 * DAY, dormant_notice=30 * DAY,
                          unlinker=unlinker)  # fmt: skip
    return retention, unlinker


async def _feed(w, account_id: str) -> list[str]:  # noqa: ANN001
    async with session_factory(w.engine)() as session:
        query = select(ChangeRow.kind).where(ChangeRow.account_id == account_id)
        return list((await session.execute(query.order_by(ChangeRow.seq))).scalars())


async def test_a_dormant_account_is_unlinked_after_its_notice_period(linking) -> None:
    w = linking
    key = generate_key()
    account = await link_account(w)
    clock = Clock(account.linked_at + 366 * DAY)
    retention, _ = _wire(w, clock, key)

    noticed = await retention.run()
    assert noticed is not None
    assert (noticed.dormant_noticed, noticed.dormant_unlinked) == ((account.id,), ())
    notice_at = clock.now

    clock.now = notice_at + 30 * DAY - timedelta(seconds=1)  # not due yet
    early = await retention.run()
    assert early is not None
    assert (early.dormant_noticed, early.dormant_unlinked) == ((), ())
    assert await _rows_about(w, account.id) >= 1

    clock.now = notice_at + 30 * DAY
    due = await retention.run()
    assert due is not None
    assert [r.account_id for r in due.dormant_unlinked] == [account.id]
    receipt = due.as_dict()["dormant_unlinked"][0]
    check = verify_receipt(receipt, TrustedKeys.of([key.public_key()]))
    assert (check.status, check.problems) == (ReceiptStatus.VALID, [])
    assert receipt["revocation"] == "revoked"
    assert receipt["rows_deleted"]["accounts_account"] == 1
    assert due.dormant_unlinked[0].owner_user_id == "user-1"
    assert await _rows_about(w, account.id) == 0
    assert await _feed(w, account.id) == [ChangeKind.UNLINKED.value]

    unlinks = [e for e in w.audit.events if e.action is Action.ACCOUNT_UNLINKED]
    assert [(e.actor, e.decision) for e in unlinks] == [(SYSTEM, Decision.ALLOW)]
    assert receipt["audit_event"]["id"] == unlinks[0].event_id
    runs = [e for e in w.audit.events if e.action is Action.RETENTION_RUN]
    assert [e.reasons[-2:] for e in runs] == [
        ("dormant_noticed:1", "dormant_unlinked:0"),
        ("dormant_noticed:0", "dormant_unlinked:0"),
        ("dormant_noticed:0", "dormant_unlinked:1"),
    ]
    after = await retention.run()  # nothing left to notice or unlink
    assert after is not None
    assert (after.dormant_noticed, after.dormant_unlinked) == ((), ())
    assert (await w.audit.verify()).ok


async def test_activity_after_the_notice_cancels_the_unlink(linking) -> None:
    w = linking
    account = await link_account(w)
    clock = Clock(account.linked_at + 366 * DAY)
    retention, _ = _wire(w, clock)
    first = await retention.run()
    assert first is not None
    assert first.dormant_noticed == (account.id,)
    notice_at = clock.now

    synced_at = notice_at + 10 * DAY  # the account syncs again during the notice period
    async with session_factory(w.engine)() as session, session.begin():
        session.add(SyncStateRow(account_id=account.id, updated_at=synced_at))

    clock.now = notice_at + 40 * DAY
    later = await retention.run()
    assert later is not None
    assert (later.dormant_noticed, later.dormant_unlinked) == ((), ())
    async with session_factory(w.engine)() as session:
        assert await session.get(AccountRow, account.id) is not None

    clock.now = synced_at + 366 * DAY  # dormant again: a new notice, and only a notice
    again = await retention.run()
    assert again is not None
    assert (again.dormant_noticed, again.dormant_unlinked) == ((account.id,), ())
    clock.now += 30 * DAY
    gone = await retention.run()
    assert gone is not None
    assert [r.account_id for r in gone.dormant_unlinked] == [account.id]
    assert await _rows_about(w, account.id) == 0


async def test_only_the_connector_unlinks_without_the_owner(linking) -> None:
    w = linking
    account = await link_account(w)
    _, unlinker = _wire(w, Clock(account.linked_at))
    with pytest.raises(ValueError, match="SYSTEM"):
        await unlinker.unlink_as_system(account.id, actor=Actor(ActorKind.USER, "user-2"))
    assert await _rows_about(w, account.id) >= 1
