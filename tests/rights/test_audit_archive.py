"""The audit log's own retention inside the service's retention run, as the composition root
builds it from settings (SQLite and PostgreSQL audit logs, a clock moved forward): each ended
period sealed into a signed segment, segments past CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS dropped
behind a signed tombstone, `audit verify` still passing across; each run recorded with the
ranges it sealed and dropped, and a refusal recorded as a failed run. With several instances, the
`retention` lease lets one of them run per interval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.event import ResourceRef
from audit.log import AuditLog, open_audit_log
from audit.memory import MemoryAuditLog
from audit.records import QueryFilter
from audit.segment_verify import verify_across
from audit.segments import ArchivePeriod
from audit.signing import generate_key, save_private_key
from audit.trust import TrustedKeys
from audit.vocab import Action, Outcome, ResourceKind
from connector.db import create_engine, migrate, session_factory
from connector.policy.authority import Authority
from connector.policy.models import ConsentRow
from connector.policy.recorder import Recorder
from connector.rights.audit_archive import SegmentsReport, archiver_from_settings
from connector.rights.retention import Retention
from connector.settings import Settings, SettingsError
from connector.wiring import AccountsDeps, build_retention, build_services, preset_accounts
from connector.wiring import retention_run as build_run
from tests.audit.helpers import make_event, raw_fetch
from tests.conftest import Clock

DAY = timedelta(days=1)
RETENTION_DAYS = 30


@dataclass
class Stack:
    settings: Settings
    engine: AsyncEngine  # the connector database (SQLite)
    log: AuditLog
    archive: Path
    trusted: TrustedKeys
    start: datetime

    def retention(self, clock: Clock) -> Retention:
        authority = Authority(Recorder(self.log, clock), None, clock)
        return build_run(self.settings, engine=self.engine, authority=authority,
                         audit_log=self.log, unlinker=None, clock=clock)  # fmt: skip


@pytest.fixture
async def stack(db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """12 events from yesterday in a signed audit log (checkpoints every 5 and at 12)."""
    key = generate_key()
    key_file = tmp_path / "signing.pem"
    save_private_key(key, key_file)
    archive = tmp_path / "archive"
    archive.mkdir()
    connector_db = f"sqlite:///{tmp_path / 'connector.db'}"
    settings = Settings(
        database_url=connector_db, audit_database_url=db_url,
        audit_admin_database_url=db_url if db_url.startswith("postgres") else "",
        audit_signing_key_file=key_file, audit_archive_dir=archive,
        audit_archive_period=ArchivePeriod.DAY, audit_segment_retention_days=RETENTION_DAYS,
    )  # fmt: skip
    engine = create_engine(connector_db)
    await migrate(engine)
    log = await open_audit_log(db_url, signing_key=key, checkpoint_every=5)
    start = datetime.now(UTC)
    try:
        for i in range(12):
            await log.append(replace(make_event(i), time=start - DAY + i * timedelta(seconds=1)))
        await log.checkpoint()
        yield Stack(settings, engine, log, archive, TrustedKeys.of([key.public_key()]), start)
    finally:
        await log.close()
        await engine.dispose()


async def _runs(log: AuditLog) -> list[tuple[Outcome, tuple[str, ...], tuple[ResourceRef, ...]]]:
    return [
        (s.event.outcome, s.event.reasons, s.event.resources)
        async for s in log.iter_events(QueryFilter(action=Action.RETENTION_RUN))
    ]


def _span(text: str) -> ResourceRef:
    return ResourceRef(ResourceKind.AUDIT_RANGE, text)


async def test_ended_periods_are_sealed_and_expired_segments_dropped(stack: Stack) -> None:
    """Day 2: yesterday's events sealed. Day 31: that segment dropped (tombstone), the first
    run's own event sealed and kept; verify passes across; a third run finds nothing due."""
    s = stack
    clock = Clock(s.start + 2 * DAY)
    first = await s.retention(clock).run()
    assert first is not None
    assert first.audit_segments == SegmentsReport(archived=("1-12",))
    assert first.as_dict()["audit_segments"] == {"archived": ["1-12"], "dropped": [],
                                                 "refused": None, "error_code": None}  # fmt: skip
    assert (s.archive / "segment-000000000001-000000000012.manifest.json").is_file()

    await s.log.checkpoint()  # covers the first run's own event, seq 13
    clock.now = s.start + 31 * DAY + DAY / 2  # 1-12 past the 30 days; 13 (day 2) not yet
    second = await s.retention(clock).run()
    assert second is not None
    assert second.audit_segments == SegmentsReport(archived=("13-13",), dropped=("1-12",))
    assert (s.archive / "segment-000000000001-000000000012.tombstone.json").is_file()
    assert not (s.archive / "segment-000000000001-000000000012.jsonl").exists()
    assert await raw_fetch(s.log.url, "SELECT min(seq) FROM audit_events") == [(13,)]

    third = await s.retention(clock).run()  # no new checkpoint, nothing due
    assert third is not None
    assert third.audit_segments == SegmentsReport()

    assert await _runs(s.log) == [
        (Outcome.OK, ("consents_removed:0", "approvals_removed:0", "dormant_noticed:0",
                      "dormant_unlinked:0", "segments_archived:1", "segments_dropped:0"),
         (_span("1-12"),)),
        (Outcome.OK, ("consents_removed:0", "approvals_removed:0", "dormant_noticed:0",
                      "dormant_unlinked:0", "segments_archived:1", "segments_dropped:1"),
         (_span("13-13"), _span("1-12"))),
        (Outcome.OK, ("consents_removed:0", "approvals_removed:0", "dormant_noticed:0",
                      "dormant_unlinked:0", "segments_archived:0", "segments_dropped:0"), ()),
    ]  # fmt: skip
    report = await verify_across(s.log, s.archive, trusted=s.trusted)
    assert report.ok, report.problems
    assert report.head_seq == 15
    notes = " ".join(report.notes)
    assert "events 1..12 dropped at" in notes
    assert "signed tombstone verified" in notes
    assert "events 13..13 read from archived segment" in notes


async def test_a_damaged_segment_is_refused_and_the_run_recorded_failed(stack: Stack) -> None:
    """A rows file changed after sealing: nothing is dropped, the live rows stay, the run says
    why and is recorded as failed (`segment_refused`), the rest of retention still done."""
    s = stack
    clock = Clock(s.start + 2 * DAY)
    assert await s.retention(clock).run() is not None
    rows = s.archive / "segment-000000000001-000000000012.jsonl"
    rows.write_text(rows.read_text().replace("m_6", "m_9"))
    clock.now = s.start + 40 * DAY
    refused = await s.retention(clock).run()
    assert refused is not None
    segments = refused.audit_segments
    assert segments is not None
    assert segments.dropped == ()
    assert segments.refused is not None
    assert segments.refused.startswith("segment 1-12: seq 7: altered")
    assert await raw_fetch(s.log.url, "SELECT count(*) FROM audit_events WHERE seq <= 12") == [
        (12,)
    ]
    assert not list(s.archive.glob("*.tombstone.json"))
    failed = [e async for e in s.log.iter_events(QueryFilter(action=Action.RETENTION_RUN))][-1]
    assert (failed.event.outcome, failed.event.error_code) == (Outcome.ERROR, "segment_refused")


async def test_an_archive_that_cannot_be_written_stops_only_the_archiving(stack: Stack) -> None:
    """Any other failure (here the rows file cannot be created): said without detail, recorded
    as audit_archive_failed, and the run's other removals are still made and recorded."""
    s = stack
    (s.archive / "segment-000000000001-000000000012.jsonl.tmp").mkdir()
    past = s.start - 400 * DAY
    async with session_factory(s.engine)() as session, session.begin():
        session.add(ConsentRow(id="old", account_id="acc-a", granted_by="user-a",
                               grantee_kind="operator", grantee_id="op1", message_ids=[],
                               created_at=past, expires_at=past + DAY))  # fmt: skip
    report = await s.retention(Clock(s.start + 2 * DAY)).run()
    assert report is not None
    assert report.consents_removed == 1
    assert report.audit_segments == SegmentsReport(
        refused="IsADirectoryError (see the service log)", error_code="audit_archive_failed"
    )
    assert not list(s.archive.glob("*.manifest.json"))
    [run] = await _runs(s.log)
    assert run[0] is Outcome.ERROR
    assert run[1][0] == "consents_removed:1"


def test_archive_settings_are_checked(tmp_path: Path) -> None:
    """check-config names each missing piece; the builder refuses an in-memory log."""
    key_file = tmp_path / "k.pem"
    save_private_key(generate_key(), key_file)
    missing = Settings(audit_archive_dir=tmp_path / "absent").problems_for_service()
    assert any("which is not a directory" in p for p in missing)
    assert any("needs CONNECTOR_AUDIT_SIGNING_KEY_FILE" in p for p in missing)
    alone = Settings(audit_segment_retention_days=5).problems_for_service()
    assert any(p.startswith("CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS needs") for p in alone)
    pg = Settings(audit_database_url="postgresql://writer@db/audit", audit_archive_dir=tmp_path,
                  audit_signing_key_file=key_file, audit_segment_retention_days=5)  # fmt: skip
    assert any("needs CONNECTOR_AUDIT_ADMIN_DATABASE_URL" in p for p in pg.problems_for_service())
    with pytest.raises(SettingsError, match="needs a stored audit log"):
        archiver_from_settings(pg, MemoryAuditLog())
    fine = Settings(audit_archive_dir=tmp_path, audit_signing_key_file=key_file)
    assert not [p for p in fine.problems_for_service() if "ARCHIVE" in p]
    assert archiver_from_settings(Settings(), MemoryAuditLog()) is None


async def test_one_instance_runs_per_interval(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """Two instances' loops on one database (WORKERS=2): the `retention` lease lets one run;
    the other skips until the interval is over, then takes over."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    settings = Settings(database_url=url, audit_hash_key="hk", workers=2)
    engine = create_engine(url)
    clock = Clock(datetime(2026, 6, 1, tzinfo=UTC))
    log = MemoryAuditLog()
    recorder = Recorder(log, clock)
    try:
        await migrate(engine)
        deps = AccountsDeps(settings, engine, recorder, session, clock)
        async with preset_accounts({})(deps) as accounts:
            services = build_services(settings, engine=engine, audit_log=log, recorder=recorder,
                                      session=session, accounts=accounts, clock=clock)  # fmt: skip
            one, other = build_retention(services), build_retention(services)
            assert await one.tick() is not None
            assert await other.tick() is None
            clock.now += timedelta(hours=settings.retention_run_hours) - timedelta(seconds=1)
            assert await other.tick() is None
            clock.now += timedelta(seconds=2)
            assert await other.tick() is not None
            assert await one.tick() is None
    finally:
        await engine.dispose()
    assert [e.action for e in log.events] == [Action.RETENTION_RUN, Action.RETENTION_RUN]


@pytest.mark.parametrize(
    ("period", "moment", "start", "following"),
    [
        (ArchivePeriod.DAY, "2026-12-31T23:59:59+00:00", "2026-12-31", "2027-01-01"),
        (ArchivePeriod.DAY, "2026-03-01T00:30:00+02:00", "2026-02-28", "2026-03-01"),
        (ArchivePeriod.MONTH, "2026-12-31T23:59:59+00:00", "2026-12-01", "2027-01-01"),
        (ArchivePeriod.MONTH, "2026-01-15T08:00:00+00:00", "2026-01-01", "2026-02-01"),
    ],
)
def test_periods_are_utc_calendar_days_and_months(
    period: ArchivePeriod, moment: str, start: str, following: str
) -> None:
    """A period starts at UTC midnight (on the 1st for a month); the next one across a year."""
    at = datetime.fromisoformat(moment)
    assert period.start(at) == datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert period.following(at) == datetime.fromisoformat(following).replace(tzinfo=UTC)
