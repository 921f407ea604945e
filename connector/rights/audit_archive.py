"""The audit log's own retention, as a step of each retention run (`connector.rights.retention`).

With CONNECTOR_AUDIT_ARCHIVE_DIR set, a run seals every AUDIT_ARCHIVE_PERIOD that has ended into
a signed segment there (`audit.segment_archive.archive_periods`: verified first, the live log
untouched), then, with AUDIT_SEGMENT_RETENTION_DAYS, drops from the live log every segment whose
newest event is older than that, oldest first, each leaving a signed tombstone
(`drop_expired`, as the tables' owner: AUDIT_ADMIN_DATABASE_URL on PostgreSQL). A segment not
yet due is not an error here; a range that does not verify, or a live log that differs from the
archive, is: the run says so (`refused`) and is recorded as failed, and nothing more is dropped;
any other failure (a full disk, a refused login) likewise, so the rest of retention still runs.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.event import ResourceRef
from audit.log import AuditLog
from audit.segment_archive import archive_periods, drop_expired
from audit.segments import ArchivePeriod, SegmentError
from audit.signing import load_private_key
from audit.vocab import ResourceKind
from connector.logs import get_logger
from connector.policy.oversight import ReadableLog
from connector.settings import Settings, SettingsError

DROP_REASON = "retention expired (CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS)"
OWNER_NEEDED = (
    "CONNECTOR_AUDIT_SEGMENT_RETENTION_DAYS on PostgreSQL needs "
    "CONNECTOR_AUDIT_ADMIN_DATABASE_URL: a segment is dropped as the audit tables' owner"
)
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SegmentsReport:
    """The ranges ("first-last") one run sealed and dropped, and why it stopped, if it did."""

    archived: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    refused: str | None = None
    error_code: str | None = None  # with `refused`: segment_refused, or audit_archive_failed

    def reasons(self) -> tuple[str, ...]:
        return (f"segments_archived:{len(self.archived)}", f"segments_dropped:{len(self.dropped)}")

    def resources(self) -> tuple[ResourceRef, ...]:
        return tuple(
            ResourceRef(ResourceKind.AUDIT_RANGE, span) for span in (*self.archived, *self.dropped)
        )

    def as_dict(self) -> dict[str, object]:
        return {"archived": list(self.archived), "dropped": list(self.dropped),
                "refused": self.refused, "error_code": self.error_code}  # fmt: skip


@dataclass(eq=False)
class AuditArchiver:
    audit: AuditLog
    directory: Path
    key: Ed25519PrivateKey = field(repr=False)  # the checkpoint key: segments, tombstones
    _: KW_ONLY
    period: ArchivePeriod
    retention: timedelta | None  # None: segments are sealed, never dropped
    # The audit tables' owner's URL (it holds a password): drops run as that owner.
    owner_url: str | None = field(default=None, repr=False)

    async def run(self, now: datetime) -> SegmentsReport:
        """Seal the periods that ended, then drop what is past the retention."""
        archived: list[str] = []
        dropped: list[str] = []
        try:
            for entry in await archive_periods(
                self.audit, self.directory, self.key, period=self.period, now=now
            ):
                archived.append(f"{entry.first}-{entry.last}")
            if self.retention is not None:
                gone = await drop_expired(
                    self.audit, self.directory, self.key, now=now, retention=self.retention,
                    reason=DROP_REASON, owner_url=self.owner_url, strict=False,
                )  # fmt: skip
                dropped += [f"{d.first}-{d.last}" for d in gone]
        except SegmentError as exc:  # a range that does not verify, a live log that differs
            log.warning("audit_archive_refused", detail=str(exc))  # seqs, dates, file names
            return SegmentsReport(tuple(archived), tuple(dropped), str(exc), "segment_refused")
        except Exception as exc:  # a full disk, the owner's login refused: the rest still runs
            log.warning("audit_archive_failed", error_type=type(exc).__name__)
            failed = f"{type(exc).__name__} (see the service log)"
            return SegmentsReport(tuple(archived), tuple(dropped), failed, "audit_archive_failed")
        return SegmentsReport(tuple(archived), tuple(dropped))


def archiver_from_settings(settings: Settings, audit: ReadableLog) -> AuditArchiver | None:
    """The archiver CONNECTOR_AUDIT_ARCHIVE_DIR asks for, or None when it is unset."""
    directory = settings.audit_archive_dir
    if directory is None:
        return None
    if not isinstance(audit, AuditLog):
        raise SettingsError(
            "CONNECTOR_AUDIT_ARCHIVE_DIR needs a stored audit log (CONNECTOR_AUDIT_DATABASE_URL), "
            "not the in-memory one"
        )
    if settings.audit_signing_key_file is None:
        raise SettingsError(
            "CONNECTOR_AUDIT_ARCHIVE_DIR needs CONNECTOR_AUDIT_SIGNING_KEY_FILE: segments and "
            "tombstones are signed with the checkpoint key"
        )
    days = settings.audit_segment_retention_days
    postgres = settings.audit_database_url.startswith("postgres")
    if days and postgres and not settings.audit_admin_database_url:
        raise SettingsError(OWNER_NEEDED)
    return AuditArchiver(
        audit, directory, load_private_key(settings.audit_signing_key_file),
        period=settings.audit_archive_period, retention=timedelta(days=days) if days else None,
        owner_url=settings.audit_admin_database_url or None,
    )  # fmt: skip
