"""The running service's retention run archives its own audit log and drops expired segments
(CONNECTOR_AUDIT_ARCHIVE_DIR, _PERIOD, AUDIT_SEGMENT_RETENTION_DAYS; on PostgreSQL as the tables'
owner while the service writes as audit_writer), and the reviewer's evidence pack from that
service verifies across the archive: the dropped start by its signed tombstone, `audit
verify-pack --segments` VALID (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.log import AuditLog
from audit.signing import generate_key, public_pem, save_private_key
from connector.web.keys import SERVICES
from connector.wiring import retention_run
from tests.conftest import Clock
from tests.e2e.conftest import first_message, running_stack

DAY = timedelta(days=1)


async def test_the_service_archives_drops_and_its_pack_verifies_across(
    db_url: str, tmp_path: Path
) -> None:
    key = generate_key()
    signing, trusted = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    save_private_key(key, signing)
    trusted.write_text(public_pem(key.public_key()))
    witness, archive = tmp_path / "witness.jsonl", tmp_path / "archive"
    archive.mkdir()
    async with running_stack(
        db_url, tmp_path, audit_signing_key_file=signing, audit_trusted_keys_file=trusted,
        audit_witness_file=witness, audit_checkpoint_every=2, audit_archive_dir=archive,
        audit_archive_period="day", audit_segment_retention_days=30,
    ) as stack:  # fmt: skip
        await first_message(stack)
        services = stack.app[SERVICES]
        log = services.audit_log
        assert isinstance(log, AuditLog)
        await log.checkpoint()
        clock = Clock(datetime.now(UTC) + 2 * DAY)  # today is over: its events are sealed
        run = retention_run(
            services.settings, engine=services.engine, authority=services.authority,
            audit_log=log, unlinker=services.accounts.unlinker, clock=clock,
        )  # fmt: skip
        sealed = await run.run()
        assert sealed is not None
        assert sealed.audit_segments is not None
        [first] = sealed.audit_segments.archived
        assert first.startswith("1-")
        assert sealed.audit_segments.dropped == ()  # two days old: kept
        clock.now += 38 * DAY
        dropped = await run.run()
        assert dropped is not None
        assert dropped.audit_segments is not None
        assert dropped.audit_segments.refused is None
        assert dropped.audit_segments.dropped[0] == first
        status, body, _ = await stack.call(
            "POST", "/v1/audit/evidence", "rev", params={"since": "2000-01-01T00:00:00+00:00"}
        )
        assert status == 200, body
        audit_db = stack.settings.audit_database_url
    pack = tmp_path / "pack"
    with zipfile.ZipFile(io.BytesIO(body)) as zipped:
        zipped.extractall(pack)
    chain = json.loads((pack / "evidence.json").read_text())["chain"]
    assert (chain["report"]["ok"], chain["report"]["problems"]) == (True, [])
    assert any("signed tombstone verified" in n for n in chain["report"]["notes"])
    segments = json.loads((pack / "manifest.json").read_text())["chain"]["segments"]
    assert segments[0]["first"] == 1
    assert {s["state"] for s in segments} == {"dropped"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "audit", "verify-pack", str(pack), "--db", audit_db,
         "--trusted-keys", str(trusted), "--witness", str(witness), "--segments", str(archive)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("VALID")
