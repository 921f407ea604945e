"""The records behind human accesses' bases, from the service database: a consent's grantor and
expiry, an access request's approver and expiry.

The audit log names each basis by id (and the approval event names the approver); when it was
due to lapse lives in the consent or access-request row. Those rows go when the account is
purged, so a basis whose row is gone is reported as such, not guessed. These details are context
for a reader: `audit verify-pack` checks the figures from the log, not these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import col, select

from audit.encoding import format_time
from connector.db import aware, create_engine, session_factory
from connector.policy.models import AccessRequestRow, ConsentRow

GONE = "the record is gone (purged with its account)"


async def basis_records(url: str, human_accesses: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """basis id -> {kind, by, expires_at} (or {kind, note: GONE}) for every basis named."""
    wanted: dict[str, str] = {
        h["basis"]["id"]: h["basis"]["kind"] for h in human_accesses if h.get("basis")
    }
    if not wanted:
        return {}
    engine = create_engine(url)
    found: dict[str, Any] = {}
    try:
        async with session_factory(engine)() as session:
            consents = await session.execute(
                select(ConsentRow).where(col(ConsentRow.id).in_(list(wanted)))
            )
            for c in consents.scalars():
                found[c.id] = {"kind": "consent", "by": c.granted_by,
                               "expires_at": format_time(aware(c.expires_at))}  # fmt: skip
            requests = await session.execute(
                select(AccessRequestRow).where(col(AccessRequestRow.id).in_(list(wanted)))
            )
            for r in requests.scalars():
                expiry = None if r.expires_at is None else format_time(aware(r.expires_at))
                found[r.id] = {"kind": "access_request", "by": r.decided_by, "expires_at": expiry}
    finally:
        await engine.dispose()
    return {i: found.get(i, {"kind": kind, "note": GONE}) for i, kind in sorted(wanted.items())}
