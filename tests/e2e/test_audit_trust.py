"""The reviewer's verify endpoint reports authenticity exactly as `audit verify` does."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.errors import AuditPrivilegeError
from audit.schema import WRITER_ROLE
from audit.signing import generate_key, public_pem, save_private_key
from tests.e2e.conftest import first_message, running_stack


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


def _keys(tmp_path: Path, signing: Ed25519PrivateKey, pinned: Ed25519PrivateKey) -> dict[str, Any]:
    """Settings that sign checkpoints with `signing` and pin `pinned` (the same key or not)."""
    signing_file, trusted_file = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    save_private_key(signing, signing_file)
    trusted_file.write_text(public_pem(pinned.public_key()))
    return {"audit_signing_key_file": signing_file, "audit_trusted_keys_file": trusted_file}


async def _verify_after_one_message(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """The reviewer's verify report (status 200) once the stack has recorded one message read."""
    async with running_stack(_db(tmp_path), tmp_path, **settings) as stack:
        await first_message(stack)
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    return report


async def test_verify_without_pinned_keys_says_consistency_only(tmp_path: Path) -> None:
    """No trusted keys configured: ok (intact) but not authentic, trust 'database', noted."""
    report = await _verify_after_one_message(tmp_path)
    assert (report["ok"], report["authentic"], report["trust"]) == (True, False, "database")
    assert report["authenticity"] == "consistent_only"
    assert any("consistency only, not authenticity" in note for note in report["notes"])


async def test_verify_with_pinned_keys_is_authentic(tmp_path: Path) -> None:
    """With CONNECTOR_AUDIT_TRUSTED_KEYS_FILE pinning the signing key: authentic, pinned."""
    key = generate_key()
    report = await _verify_after_one_message(
        tmp_path, **_keys(tmp_path, key, key), audit_checkpoint_every=2
    )
    assert (report["ok"], report["authentic"], report["trust"]) == (True, True, "pinned")
    assert report["authenticity"] == "authentic"
    assert report["signed_seq"] >= 2


async def test_verify_rejects_checkpoints_of_an_unpinned_key(tmp_path: Path) -> None:
    """The reviewer's verify reports checkpoints by an unpinned signing key as damage."""
    report = await _verify_after_one_message(
        tmp_path, **_keys(tmp_path, generate_key(), generate_key()), audit_checkpoint_every=2
    )
    assert (report["ok"], report["authentic"], report["authenticity"]) == (False, False, "damaged")
    assert report["problems"][0]["damage"] == "forged_checkpoint"


async def test_service_publishes_checkpoints_to_the_witness(tmp_path: Path) -> None:
    """The service appends each committed checkpoint to the witness file and verifies against it."""
    key = generate_key()
    witness = tmp_path / "w.jsonl"
    async with running_stack(
        _db(tmp_path), tmp_path, **_keys(tmp_path, key, key), audit_witness_file=witness,
        audit_checkpoint_every=2,
    ) as stack:  # fmt: skip
        await first_message(stack)
        stored = await stack.audit_log.checkpoints()
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    lines = [json.loads(line) for line in witness.read_text().splitlines()]
    assert [line["seq"] for line in lines[: len(stored)]] == [c.seq for c in stored]
    assert report["witnessed"] >= len(stored) > 0
    assert (report["authentic"], report["problems"]) == (True, [])


async def test_service_refuses_an_audit_login_that_may_change_rows(
    pg_database: str, tmp_path: Path
) -> None:
    """On PostgreSQL the service will not start with an administrator as its audit login."""
    with pytest.raises(AuditPrivilegeError, match="login postgres is a superuser"):
        async with running_stack(pg_database, tmp_path, audit_database_url=pg_database,
                                 audit_admin_database_url=""):  # fmt: skip
            pass


async def test_service_as_audit_writer_records_and_verifies(
    pg_database: str, tmp_path: Path
) -> None:
    """On PostgreSQL the service appends as audit_writer and its verify finds the log intact."""
    async with running_stack(pg_database, tmp_path) as stack:
        assert stack.settings.audit_database_url.startswith(f"postgresql://{WRITER_ROLE}@")
        await first_message(stack)
        role = await stack.audit_log.store.pool.fetchval("SELECT session_user")
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert role == WRITER_ROLE
    assert (status, report["ok"]) == (200, True)
    assert report["events"] >= 3


async def test_connector_serve_exits_2_with_an_administrator_audit_login(
    pg_database: str, tmp_path: Path
) -> None:
    """`connector serve` with a superuser as its audit login says why and exits 2, no traceback."""
    env = {**_serve_env(tmp_path), "CONNECTOR_AUDIT_DATABASE_URL": pg_database}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = err.decode()
    assert proc.returncode == 2, text
    assert "connector serve: the audit log login at" in text
    assert "login postgres is a superuser" in text
    assert "Traceback" not in text


def _serve_env(tmp_path: Path) -> dict[str, str]:
    from connector.testing.fleet import free_port
    from tests.web.test_serve_cli import _env

    return _env(tmp_path, free_port())
