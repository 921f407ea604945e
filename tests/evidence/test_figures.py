"""`audit.pack_figures` on SQLite and PostgreSQL: the period's bounds, the head cut-off, and the
lifecycle state, against events written through the real log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.event import Actor, AuditEvent
from audit.log import AuditLog, open_audit_log
from audit.pack_figures import Period, period_figures
from audit.vocab import Action, ActorKind, Decision, Outcome, Phase, Purpose
from tests.audit.helpers import scratch_audit_url
from tests.evidence.conftest import _more_events

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditLog]:
    async with scratch_audit_url(request.param, tmp_path) as url:
        opened = await open_audit_log(url)
        try:
            yield opened
        finally:
            await opened.close()


def _at(event: AuditEvent, minutes: int) -> AuditEvent:
    return replace(event, time=T0 + timedelta(minutes=minutes))


def _read(minutes: int) -> AuditEvent:
    return AuditEvent(Actor(ActorKind.USER, "u1"), Action.GMAIL_MESSAGE_READ, Decision.ALLOW,
                      Outcome.PENDING, account_id="a1", purpose=Purpose.USER_FEATURE,
                      phase=Phase.DECISION, time=T0 + timedelta(minutes=minutes))  # fmt: skip


async def test_the_period_and_the_head_bound_the_figures(log: AuditLog) -> None:
    """Events before `since`, at or after `until`, or after the head are not counted; an
    approval before the period still names the approver; relink state is as of the end."""
    forbidden, approval, approved_read, relink = _more_events()
    events = [
        _read(0),  # before the period
        _at(approval, 5),  # before the period, but approves a read inside it
        _at(forbidden, 10),
        _read(11),
        _at(approved_read, 12),
        _at(relink, 13),
        _read(30),  # at `until`: excluded
    ]
    receipts = [await log.append(e) for e in events]
    relinked = AuditEvent(Actor(ActorKind.USER, "u1"), Action.ACCOUNT_LINKED, Decision.ALLOW,
                          Outcome.OK, account_id=relink.account_id, purpose=Purpose.USER_FEATURE,
                          time=T0 + timedelta(minutes=14))  # fmt: skip
    head = receipts[-1].seq
    await log.append(relinked)  # after the head: ignored
    period = Period(T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))
    figures = await period_figures(log.store, period, through_seq=head)
    assert figures["events"] == 4
    assert figures["by_purpose_decision"] == {
        "advertising/deny": 1, "security/allow": 1, "user_feature/allow": 2,
    }  # fmt: skip
    assert figures["accesses"] == {"advertising/deny": 1, "security/allow": 1,
                                   "user_feature/allow": 1}  # fmt: skip
    assert [r["seq"] for r in figures["refusals"]] == [receipts[2].seq]
    assert figures["refusals"][0]["reasons"] == ["purpose.forbidden"]
    assert figures["forbidden_purpose"] == [receipts[2].seq]
    assert [(h["seq"], h["approver"]) for h in figures["human_accesses"]] == [
        (receipts[2].seq, None), (receipts[4].seq, "op-oscar"),
    ]  # fmt: skip
    assert figures["needs_relink"] == [relink.account_id]
    assert figures["unlinks"] == []
    later = await period_figures(log.store, period)  # no head: the relink is seen
    assert later["needs_relink"] == []
