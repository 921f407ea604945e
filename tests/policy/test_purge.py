"""The policy layer's part of delete-my-data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from connector.db import create_engine, migrate, session_factory
from connector.policy.models import AccessRequestRow, ConsentRow, UsageRow, table
from connector.policy.purge import PolicyPurger

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _consent(cid: str, account: str) -> ConsentRow:
    return ConsentRow(
        id=cid,
        account_id=account,
        granted_by="u1",
        grantee_kind="operator",
        grantee_id="op1",
        message_ids=["18c0ffee00000001"],
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )


async def _count(session: sa.ext.asyncio.AsyncSession, model: type, account: str) -> int:
    rows = table(model)
    result = await session.execute(
        sa.select(sa.func.count()).select_from(rows).where(rows.c.account_id == account)
    )
    return int(result.scalar_one())


async def test_purger_deletes_only_that_accounts_consents_and_usage(db_url: str) -> None:
    """Consents and usage of the unlinked account go; other accounts and access requests stay."""
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            session.add_all([_consent("c1", "acct-a"), _consent("c2", "acct-b")])
            session.add_all(
                [
                    UsageRow(
                        account_id="acct-a",
                        day=date(2026, 11, 1),
                        operation="content.read",
                        count=3,
                    ),
                    UsageRow(
                        account_id="acct-b",
                        day=date(2026, 11, 1),
                        operation="content.read",
                        count=1,
                    ),
                ]
            )
            session.add(
                AccessRequestRow(
                    id="r1",
                    account_id="acct-a",
                    requester_id="op1",
                    purpose="security",
                    case_reference="CASE-1",
                    reason="abuse report",
                    message_ids=[],
                    duration_seconds=3600,
                    status="pending",
                    created_at=NOW,
                )
            )
        async with sessions.begin() as session:
            counts = await PolicyPurger().purge(session, "acct-a")
        assert counts == {"policy_consent": 1, "policy_usage": 1}
        async with sessions() as session:
            assert await _count(session, ConsentRow, "acct-a") == 0
            assert await _count(session, UsageRow, "acct-a") == 0
            assert await _count(session, ConsentRow, "acct-b") == 1
            assert await _count(session, UsageRow, "acct-b") == 1
            assert await _count(session, AccessRequestRow, "acct-a") == 1
    finally:
        await engine.dispose()
