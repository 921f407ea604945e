"""Deletion on request (SQLite and PostgreSQL): the unlink deletes every row about the account
with a signed receipt tied to its audit event; a second request answers that nothing is linked
and deletes or records nothing more; a retention run afterwards has nothing left to notice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from audit.receipts import ReceiptStatus, verify_receipt
from audit.signing import generate_key
from audit.trust import TrustedKeys
from audit.vocab import Action
from connector.accounts.changes import ChangeKind
from connector.accounts.models import ACCOUNT_TABLES, ChangeRow
from connector.accounts.unlink import Unlinker
from connector.db import session_factory
from connector.errors import AccountNotLinkedError
from connector.policy.authority import Authority
from connector.policy.purge import PolicyPurger
from connector.policy.recorder import Recorder
from connector.rights.retention import Retention
from tests.conftest import Clock
from tests.linking.conftest import FAST, link_account, link_config


async def _rows_about(w, account_id: str) -> int:
    """Rows about the account, but for the change feed's own notice that it was unlinked."""
    total = 0
    async with session_factory(w.engine)() as session:
        for table, column in ACCOUNT_TABLES:
            query = select(func.count()).where(getattr(table, column) == account_id)
            if table is ChangeRow:
                query = query.where(ChangeRow.kind != ChangeKind.UNLINKED.value)
            total += int((await session.execute(query)).scalar_one())
    return total


async def test_deletion_is_receipted_once_and_a_second_request_is_answered(linking) -> None:
    w = linking
    key = generate_key()
    account = await link_account(w)
    assert await _rows_about(w, account.id) >= 1
    endpoints = link_config(w.emu).endpoints(w.session, FAST)
    unlinker = Unlinker(w.engine, w.vault, endpoints, w.authority(), purgers=[PolicyPurger()],
                        signing_key=key)  # fmt: skip

    receipt = (await unlinker.unlink(account.id, user_id="user-1")).as_dict()
    check = verify_receipt(receipt, TrustedKeys.of([key.public_key()]))
    assert (check.status, check.problems) == (ReceiptStatus.VALID, [])
    assert receipt["rows_deleted"]["accounts_account"] == 1
    assert await _rows_about(w, account.id) == 0
    unlinked = [e for e in w.audit.events if e.action is Action.ACCOUNT_UNLINKED]
    assert len(unlinked) == 1

    recorded = len(w.audit.events)
    with pytest.raises(AccountNotLinkedError):
        await unlinker.unlink(account.id, user_id="user-1")
    assert len(w.audit.events) == recorded  # nothing more deleted, nothing more recorded

    clock = Clock(account.linked_at + timedelta(days=10_000))
    retention = Retention(w.engine, Authority(Recorder(w.audit, clock), None, clock),
                          clock=clock)  # fmt: skip
    report = await retention.run()
    assert report is not None
    assert report.dormant_noticed == ()
    assert await _rows_about(w, account.id) == 0
