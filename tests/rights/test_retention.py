"""Retention runs on a clock moved forward: exactly what is due leaves, and each run is recorded
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from audit.event import Actor
from audit.memory import MemoryAuditLog
from audit.vocab import Action, ActorKind, Decision
from connector.accounts.changes import ChangeKind
from connector.accounts.models import AccountRow, ChangeRow, SyncStateRow
from connector.db import create_engine, migrate, session_factory
from connector.errors import AccessDenied
from connector.policy.authority import Authority
from connector.policy.models import AccessRequestRow, ConsentRow, table
from connector.policy.recorder import Change, Recorder
from connector.policy.vocab import Operation
from connector.rights.jobs import RetentionLoop
from connector.rights.retention import RETENTION_LOCK_KEY, Retention
from tests.conftest import Clock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _account(account_id: str, owner: str, active: datetime) -> AccountRow:
    return AccountRow(
        id=account_id, owner_user_id=owner, status="active", scopes=[],
        refresh_token_sealed="sealed", linked_at=active, updated_at=active,
    )  # fmt: skip


def _consent(cid: str, expires: datetime, revoked: datetime | None = None) -> ConsentRow:
    return ConsentRow(
        id=cid, account_id="acc-a", granted_by="user-a", grantee_kind="operator",
        grantee_id="op1", message_ids=["m1"], created_at=T0, expires_at=expires,
        revoked_at=revoked,
    )  # fmt: skip


def _request(
    rid: str, status: str, expires: datetime | None, hold: bool = False
) -> AccessRequestRow:
    return AccessRequestRow(
        id=rid, account_id="acc-a", requester_id="op1", purpose="security", case_reference="C-1",
        reason="case", message_ids=["m1"], duration_seconds=3600, legal_hold=hold, status=status,
        created_at=T0, expires_at=expires,
    )  # fmt: skip


async def _ids(engine: AsyncEngine, model: type[SQLModel]) -> set[str]:
    rows = table(model)
    async with session_factory(engine)() as session:
        return set((await session.execute(select(rows.c.id))).scalars())


async def _notices(engine: AsyncEngine) -> list[str]:
    rows = table(ChangeRow)
    query = select(rows.c.account_id).where(rows.c.kind == ChangeKind.DORMANT_NOTICE.value)
    async with session_factory(engine)() as session:
        return list((await session.execute(query.order_by(rows.c.seq))).scalars())


async def test_run_removes_exactly_what_is_due_and_records_it(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session, session.begin():
            session.add_all([
                _account("acc-a", "user-a", T0),  # dormant from T0 + 100 days
                _account("acc-b", "user-b", T0),  # synced recently: not dormant
                SyncStateRow(account_id="acc-b", updated_at=T0 + 95 * DAY),
                _consent("c-expiring", T0 + 10 * DAY),
                _consent("c-live", T0 + 30 * DAY),
                _consent("c-revoked", T0 + 30 * DAY, revoked=T0 + 2 * DAY),
                _request("r-approved", "approved", T0 + 10 * DAY),
                _request("r-held", "approved", T0 + 10 * DAY, hold=True),
                _request("r-later", "approved", T0 + 30 * DAY),
                _request("r-pending", "pending", None),
            ])  # fmt: skip
        log = MemoryAuditLog()
        clock = Clock(T0 + 10 * DAY)  # c-expiring and r-approved are due exactly now
        retention = Retention(engine, Authority(Recorder(log, clock), None, clock), clock=clock,
                              dormant_after=100 * DAY)  # fmt: skip

        first = await retention.run()
        assert first is not None
        assert (first.consents_removed, first.approvals_removed) == (2, 1)
        assert first.dormant_noticed == ()
        assert await _ids(engine, ConsentRow) == {"c-live"}
        assert await _ids(engine, AccessRequestRow) == {"r-held", "r-later", "r-pending"}

        clock.now = T0 + 101 * DAY  # acc-a dormant; acc-b synced 6 days ago
        second = await retention.run()
        assert second is not None
        assert (second.consents_removed, second.approvals_removed) == (1, 1)
        assert second.dormant_noticed == ("acc-a",)
        assert await _ids(engine, ConsentRow) == set()
        assert await _ids(engine, AccessRequestRow) == {"r-held", "r-pending"}
        assert await _ids(engine, AccountRow) == {"acc-a", "acc-b"}  # notice only, kept
        assert await _notices(engine) == ["acc-a"]

        clock.now = T0 + 200 * DAY  # one notice per dormant spell; acc-b is dormant now
        third = await retention.run()
        assert third is not None
        assert third.dormant_noticed == ("acc-b",)
        assert await _notices(engine) == ["acc-a", "acc-b"]

        runs = [e for e in log.events if e.action is Action.RETENTION_RUN]
        assert [e.actor.kind for e in runs] == [ActorKind.SYSTEM] * 3
        assert [e.decision for e in runs] == [Decision.ALLOW] * 3
        assert [e.reasons for e in runs] == [
            (
                "consents_removed:2",
                "approvals_removed:1",
                "dormant_noticed:0",
                "dormant_unlinked:0",
            ),
            (
                "consents_removed:1",
                "approvals_removed:1",
                "dormant_noticed:1",
                "dormant_unlinked:0",
            ),
            (
                "consents_removed:0",
                "approvals_removed:0",
                "dormant_noticed:1",
                "dormant_unlinked:0",
            ),
        ]
        assert [e.time for e in runs] == [T0 + 10 * DAY, T0 + 101 * DAY, T0 + 200 * DAY]
        assert (await log.verify()).ok
    finally:
        await engine.dispose()


async def test_retention_is_refused_to_anyone_but_the_connector() -> None:
    """A user cannot run retention: the policy refuses, the refusal is recorded."""
    log = MemoryAuditLog()
    authority = Authority(Recorder(log), None)
    user = Actor(ActorKind.USER, "user-a")
    change = Change(user, Operation.RETENTION_RUN, Action.RETENTION_RUN)
    with pytest.raises(AccessDenied):
        await authority.authorize(change)
    assert [e.decision for e in log.events] == [Decision.DENY]


def test_dormant_period_must_be_positive(sqlite_engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Retention(sqlite_engine, Authority(Recorder(MemoryAuditLog()), None),
                  dormant_after=timedelta(0))  # fmt: skip


async def test_a_second_instance_skips_while_a_run_holds_the_lock(db_url: str) -> None:
    """Two instances at once on PostgreSQL: the one that finds the lock taken does nothing and
    records nothing; the loop's `may_run` port is asked before each run."""
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        log = MemoryAuditLog()
        retention = Retention(engine, Authority(Recorder(log), None))
        refused = RetentionLoop(retention, every=DAY, may_run=_never)
        assert await refused.tick() is None
        if engine.dialect.name == "postgresql":
            async with engine.connect() as other, other.begin():
                held = text("SELECT pg_advisory_xact_lock(:k)")
                await other.execute(held, {"k": RETENTION_LOCK_KEY})
                assert await retention.run() is None
            assert [e.action for e in log.events] == []
        assert await RetentionLoop(retention, every=DAY).tick() is not None
        assert [e.action for e in log.events] == [Action.RETENTION_RUN]
        async with RetentionLoop(retention, every=DAY).running():
            await asyncio.sleep(0.05)  # the first run is one interval after start
        assert len(log.events) == 1
        async with RetentionLoop(retention, every=timedelta(milliseconds=20)).running():
            for _ in range(200):
                if len(log.events) >= 3:
                    break
                await asyncio.sleep(0.01)
        assert {e.action for e in log.events} == {Action.RETENTION_RUN}
        assert len(log.events) >= 3
    finally:
        await engine.dispose()


async def _never() -> bool:
    return False
