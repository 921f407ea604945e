"""The reviewer's verify endpoint reports authenticity exactly as `audit verify` does."""

from __future__ import annotations

import json
from pathlib import Path

from audit.signing import generate_key, public_pem, save_private_key
from tests.e2e.conftest import first_message, running_stack


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


async def test_verify_without_pinned_keys_says_consistency_only(tmp_path: Path) -> None:
    """No trusted keys configured: ok (intact) but not authentic, trust 'database', noted."""
    async with running_stack(_db(tmp_path), tmp_path) as stack:
        await first_message(stack)
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    assert (report["ok"], report["authentic"], report["trust"]) == (True, False, "database")
    assert report["authenticity"] == "consistent_only"
    assert any("consistency only, not authenticity" in note for note in report["notes"])


async def test_verify_with_pinned_keys_is_authentic(tmp_path: Path) -> None:
    """With CONNECTOR_AUDIT_TRUSTED_KEYS_FILE pinning the signing key: authentic, pinned."""
    key = generate_key()
    signing, trusted = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    save_private_key(key, signing)
    trusted.write_text(public_pem(key.public_key()))
    async with running_stack(
        _db(tmp_path), tmp_path, audit_signing_key_file=signing,
        audit_trusted_keys_file=trusted, audit_checkpoint_every=2,
    ) as stack:  # fmt: skip
        await first_message(stack)
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    assert (report["ok"], report["authentic"], report["trust"]) == (True, True, "pinned")
    assert report["authenticity"] == "authentic"
    assert report["signed_seq"] >= 2


async def test_verify_rejects_checkpoints_of_an_unpinned_key(tmp_path: Path) -> None:
    """The service signing with a key its trusted set does not pin reports damage (a test
    bypasses the start-up check that would refuse this configuration)."""
    signing, trusted = tmp_path / "signing.pem", tmp_path / "trusted.pem"
    save_private_key(generate_key(), signing)
    trusted.write_text(public_pem(generate_key().public_key()))
    async with running_stack(
        _db(tmp_path), tmp_path, audit_signing_key_file=signing,
        audit_trusted_keys_file=trusted, audit_checkpoint_every=2,
    ) as stack:  # fmt: skip
        await first_message(stack)
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    assert (report["ok"], report["authentic"], report["authenticity"]) == (False, False, "damaged")
    assert report["problems"][0]["damage"] == "forged_checkpoint"


async def test_service_publishes_checkpoints_to_the_witness(tmp_path: Path) -> None:
    """With CONNECTOR_AUDIT_WITNESS_FILE each committed checkpoint is appended to the file,
    and the reviewer's verify checks the log against it."""
    key = generate_key()
    signing, trusted, witness = (tmp_path / n for n in ("s.pem", "t.pem", "w.jsonl"))
    save_private_key(key, signing)
    trusted.write_text(public_pem(key.public_key()))
    async with running_stack(
        _db(tmp_path), tmp_path, audit_signing_key_file=signing, audit_trusted_keys_file=trusted,
        audit_witness_file=witness, audit_checkpoint_every=2,
    ) as stack:  # fmt: skip
        await first_message(stack)
        stored = await stack.audit_log.checkpoints()
        status, report, _ = await stack.call("POST", "/v1/audit/verify", "rev")
    assert status == 200
    lines = [json.loads(line) for line in witness.read_text().splitlines()]
    assert [line["seq"] for line in lines[: len(stored)]] == [c.seq for c in stored]
    assert report["witnessed"] >= len(stored) > 0
    assert (report["authentic"], report["problems"]) == (True, [])
