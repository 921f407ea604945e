"""Audit settings `connector serve` checks before it starts: pinned keys and the witness."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.signing import generate_key, load_private_key, public_pem, save_private_key
from audit.trust import fingerprint
from connector.settings import Settings
from tests.test_settings import SERVICE, _run


def _keys(tmp_path: Path) -> tuple[Path, str]:
    key = generate_key()
    signing = tmp_path / "signing.pem"
    save_private_key(key, signing)
    return signing, public_pem(key.public_key())


def test_trusted_keys_that_pin_the_signing_key_are_accepted(tmp_path: Path) -> None:
    """A trusted-keys file holding the signing key's PEM or fingerprint raises no problem."""
    signing, pem = _keys(tmp_path)
    trusted = tmp_path / "trusted"
    for text in (pem, "# fp\n" + fingerprint(_public(signing)) + "\n"):
        trusted.write_text(text)
        env = {**SERVICE, "CONNECTOR_AUDIT_SIGNING_KEY_FILE": str(signing),
               "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE": str(trusted)}  # fmt: skip
        assert Settings.from_env(env).problems_for_service() == []


def test_trusted_keys_must_pin_the_signing_key(tmp_path: Path) -> None:
    """The service refuses to start when its own checkpoints would fail its reviewer verify."""
    signing, _ = _keys(tmp_path)
    trusted = tmp_path / "trusted"
    trusted.write_text(public_pem(generate_key().public_key()))
    env = {**SERVICE, "CONNECTOR_AUDIT_SIGNING_KEY_FILE": str(signing),
           "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE": str(trusted)}  # fmt: skip
    (problem,) = Settings.from_env(env).problems_for_service()
    assert problem.startswith(
        f"CONNECTOR_AUDIT_SIGNING_KEY_FILE holds key {fingerprint(_public(signing))}, which "
        "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE"
    )


def test_malformed_or_missing_trusted_keys_are_named(tmp_path: Path) -> None:
    """A trusted-keys file that is unreadable or pins nothing is one problem naming it."""
    bad = tmp_path / "bad"
    bad.write_text("not a key\n")
    (malformed,) = Settings.from_env(
        {**SERVICE, "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE": str(bad)}
    ).problems_for_service()
    assert malformed.startswith("CONNECTOR_AUDIT_TRUSTED_KEYS_FILE: ")
    assert "line 1" in malformed
    missing = tmp_path / "missing"
    (unreadable,) = Settings.from_env(
        {**SERVICE, "CONNECTOR_AUDIT_TRUSTED_KEYS_FILE": str(missing)}
    ).problems_for_service()
    assert unreadable == (
        f"CONNECTOR_AUDIT_TRUSTED_KEYS_FILE names {missing}, which cannot be read: "
        "No such file or directory"
    )


def _public(signing: Path) -> Ed25519PublicKey:
    return load_private_key(signing).public_key()


def test_witness_file_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    """A witness file the service could not create is reported before anything starts."""
    path = tmp_path / "absent" / "witness.jsonl"
    (problem,) = Settings.from_env(
        {**SERVICE, "CONNECTOR_AUDIT_WITNESS_FILE": str(path)}
    ).problems_for_service()
    assert problem == f"CONNECTOR_AUDIT_WITNESS_FILE names {path}, whose directory does not exist"
    fine = tmp_path / "witness.jsonl"
    assert (
        Settings.from_env(
            {**SERVICE, "CONNECTOR_AUDIT_WITNESS_FILE": str(fine)}
        ).problems_for_service()
        == []
    )
    assert not fine.exists()  # checking writes nothing


def test_check_config_masks_the_audit_owner_password(tmp_path: Path) -> None:
    """The owner's URL for migrations is shown like the other database URLs: password masked."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        **SERVICE,
        "CONNECTOR_AUDIT_DATABASE_URL": "postgresql://audit_writer:w-pass-77@db/audit",
        "CONNECTOR_AUDIT_ADMIN_DATABASE_URL": "postgresql://owner:o-pass-88@db/audit",
    }
    result = _run(cwd, "check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert "postgresql://owner:***@db/audit" in result.stdout
    assert "postgresql://audit_writer:***@db/audit" in result.stdout
    assert "o-pass-88" not in result.stdout + result.stderr
    assert "w-pass-77" not in result.stdout + result.stderr
