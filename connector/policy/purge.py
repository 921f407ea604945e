"""The policy layer's share of delete-my-data, run by `connector.accounts.unlink.Unlinker`.

Consents (which message ids the owner opened to support) and per-account usage counters are the
owner's data and go with the account. Access requests are kept: they are staff records of a
security or legal case (possibly under legal hold) and hold no mail content, only ids; an approval
cannot outlive its expiry, and the audit log keeps the history either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from connector.policy.models import ConsentRow, UsageRow, table


class PolicyPurger:
    """Deletes an account's consents and usage counters inside the unlink transaction."""

    name = "policy"

    async def purge(self, session: AsyncSession, account_id: str) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for rows in (table(ConsentRow), table(UsageRow)):
            result = await session.execute(delete(rows).where(rows.c.account_id == account_id))
            counts[rows.name] = int(getattr(result, "rowcount", 0) or 0)
        return counts
