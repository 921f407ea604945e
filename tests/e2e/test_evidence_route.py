"""The evidence pack from the running service: POST /v1/audit/evidence answers a zip that
`audit verify-pack` accepts against the service's own audit log; the read is decided and
recorded; other roles are refused; a service that cannot sign or store says so (409)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from audit.memory import MemoryAuditLog
from audit.signing import generate_key, public_pem, save_private_key
from audit.vocab import Action, ActorKind, Decision
from connector.evidence.service import refusal
from connector.settings import Settings
from tests.e2e.conftest import first_message, running_stack

EVIDENCE = "/v1/audit/evidence"


def _signing(tmp_path: Path) -> dict[str, Path]:
    key = generate_key()
    signing, trusted = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    save_private_key(key, signing)
    trusted.write_text(public_pem(key.public_key()))
    return {"audit_signing_key_file": signing, "audit_trusted_keys_file": trusted,
            "audit_witness_file": tmp_path / "witness.jsonl"}  # fmt: skip


async def test_the_downloaded_pack_verifies_against_the_service_log(tmp_path: Path) -> None:
    keys = _signing(tmp_path)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with running_stack(db, tmp_path, **keys, audit_checkpoint_every=2) as stack:
        await first_message(stack)
        status, body, response = await stack.call(
            "POST", EVIDENCE, "rev", params={"since": "2000-01-01T00:00:00+00:00"}
        )
        assert status == 200, body
        assert response.content_type == "application/zip"
        assert "attachment" in response.headers["Content-Disposition"]
        refused, problem, _ = await stack.call("POST", EVIDENCE, "alice")
        assert refused == 403, problem
        backwards = {"since": "2030-01-02T00:00:00+00:00", "until": "2030-01-01T00:00:00+00:00"}
        bad, problem, _ = await stack.call("POST", EVIDENCE, "rev", params=backwards)
        assert bad == 422, problem
        exported = await stack.events(action=Action.AUDIT_EXPORTED, actor_id="rev")
        audit_db = stack.settings.audit_database_url
    assert [(e.actor.kind, e.decision) for e in exported] == [(ActorKind.REVIEWER, Decision.ALLOW)]
    pack = tmp_path / "pack"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(pack)
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["tests"]["status"] == "skipped"
    assert manifest["period"]["since"].startswith("2000-01-01")
    assert {"index.html", "evidence.json"} <= {p.name for p in pack.iterdir()}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "audit", "verify-pack", str(pack), "--db", audit_db,
         "--trusted-keys", str(keys["audit_trusted_keys_file"]),
         "--witness", str(keys["audit_witness_file"])],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("VALID")
    (pack / "evidence.json").write_text((pack / "evidence.json").read_text() + " ")
    tampered = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "audit", "verify-pack", str(pack), "--db", audit_db,
         "--trusted-keys", str(keys["audit_trusted_keys_file"])],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert tampered.returncode == 1


async def test_without_a_signing_key_the_service_says_so(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with running_stack(db, tmp_path) as stack:
        status, problem, _ = await stack.call("POST", EVIDENCE, "rev")
        exported = await stack.events(action=Action.AUDIT_EXPORTED)
    assert status == 409
    assert "CONNECTOR_AUDIT_SIGNING_KEY_FILE" in problem["detail"]
    assert exported == []  # nothing was read


def test_the_memory_log_is_refused_clearly(tmp_path: Path) -> None:
    """The in-memory audit log (tests, demos) cannot be verified by `audit verify-pack`."""
    settings = Settings(**_signing(tmp_path))
    reason = refusal(MemoryAuditLog(), settings)
    assert reason is not None
    assert "in memory" in reason
