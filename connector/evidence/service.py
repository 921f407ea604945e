"""The evidence pack from the running service (the reviewer console, POST /v1/audit/evidence).

The same pack as `connector evidence`, from the service's own audit log, trust anchors, vault
ring and database, returned as one zip. The policy and gate suites are not run inside the
service (the pack records them as skipped); the read is decided and recorded as an audit read
before anything is collected. A service whose audit log is the in-memory one, or that has no
checkpoint signing key, cannot make a pack that `audit verify-pack` could check: it says so.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from pathlib import Path

from audit.encoding import format_time
from audit.log import AuditLog
from audit.pack_figures import Period
from audit.signing import load_private_key
from audit.trust import load_trusted_keys
from connector.accounts.vault import key_provider_from_settings
from connector.clock import Clock
from connector.errors import EvidencePackError
from connector.evidence.bases import basis_records
from connector.evidence.collect import ROOT, Sources, collect
from connector.evidence.manifest import write_pack
from connector.evidence.suites import skipped
from connector.policy.authority import Authority
from connector.policy.oversight import ReadableLog
from connector.policy.recorder import Change
from connector.settings import Settings

NOT_RUN = "not run by the service (run `connector evidence` beside the code to include them)"


def _zipped(directory: Path) -> bytes:
    """Every file under `directory`, by its path in the pack, in one zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def _write_zip(evidence: dict[str, object], settings: Settings) -> bytes:
    assert settings.audit_signing_key_file is not None
    key = load_private_key(settings.audit_signing_key_file)
    with tempfile.TemporaryDirectory(prefix="evidence-") as tmp:
        out = Path(tmp) / "pack"
        write_pack(out, evidence, key, root=ROOT, app_name=settings.app_name)
        return _zipped(out)


def refusal(log: ReadableLog, settings: Settings) -> str | None:
    """Why this service cannot make a checkable pack; None when it can."""
    if not isinstance(log, AuditLog):
        return "the service's audit log is in memory: a pack needs a stored, verifiable log"
    if settings.audit_signing_key_file is None:
        return "no checkpoint signing key is configured (CONNECTOR_AUDIT_SIGNING_KEY_FILE)"
    return None


async def pack_archive(
    log: ReadableLog,
    authority: Authority,
    change: Change,
    *,
    settings: Settings,
    period: Period,
    clock: Clock,
) -> bytes:
    """Decide and record the read, collect the pack over `period`, sign it; the zip's bytes."""
    problem = refusal(log, settings)
    if problem is not None:
        raise EvidencePackError(f"the evidence pack cannot be made here: {problem}")
    assert isinstance(log, AuditLog)
    await authority.permit(change)
    path = settings.audit_trusted_keys_file
    trusted = None if path is None else load_trusted_keys(path)
    has_ring = settings.vault_keys or settings.vault_key_file is not None
    ring = key_provider_from_settings(settings).load() if has_ring else None
    sources = Sources(log, trusted, settings.audit_witness_file, period, ring, settings.app_name,
                      segments=settings.audit_archive_dir)  # fmt: skip
    evidence = await collect(sources, skipped(detail=NOT_RUN), format_time(clock()))
    humans = evidence["figures"]["human_accesses"]
    evidence["bases"] = await basis_records(settings.database_url, humans)
    return await asyncio.to_thread(_write_zip, evidence, settings)
