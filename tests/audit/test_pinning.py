"""Pinned checkpoint keys: authenticity needs keys from outside the audit database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import MemoryAuditLog, open_audit_log
from audit.cli import main
from audit.signing import KeyFormatError, generate_key, public_pem, save_private_key
from audit.trust import TrustedKeys, fingerprint, load_trusted_keys, parse_trusted_keys
from audit.verify import Authenticity, Damage, Trust
from tests.audit.helpers import make_event
from tests.audit.test_cli import run


async def build(url: str, key: Ed25519PrivateKey, n: int = 12) -> None:
    log = await open_audit_log(url, signing_key=key, checkpoint_every=5)
    for i in range(n):
        await log.append(make_event(i))
    await log.close()  # signs the head


def pem_file(tmp_path: Path, key: Ed25519PrivateKey, name: str = "trusted.pem") -> Path:
    path = tmp_path / name
    path.write_text(public_pem(key.public_key()))
    return path


def test_trusted_keys_file_takes_pems_fingerprints_and_comments(tmp_path: Path) -> None:
    """One file may hold PEM public keys and hex fingerprints, with comments and blank lines."""
    a, b = generate_key().public_key(), generate_key().public_key()
    text = f"# current key\n{public_pem(a)}\n\nsha256:{fingerprint(b).upper()}  # the next one\n"
    path = tmp_path / "keys"
    path.write_text(text)
    trusted = load_trusted_keys(path)
    assert trusted.admits(a)
    assert trusted.admits(b)
    assert not trusted.admits(generate_key().public_key())
    assert trusted.fingerprints == {fingerprint(b)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "pins no key"),
        ("# nothing but a comment\n", "pins no key"),
        ("\n\nnot-a-fingerprint\n", "line 3: 'not-a-fingerprint' is not a SHA-256"),
        ("ab" * 31 + "\n", "is not a SHA-256 key fingerprint"),
    ],
)
def test_malformed_trusted_keys_are_refused(text: str, message: str) -> None:
    """An empty file, a stray line or a short fingerprint is an error naming the line."""
    with pytest.raises(KeyFormatError, match=message):
        parse_trusted_keys(text, "keys.txt")


def test_a_private_key_is_not_accepted_as_a_pin(tmp_path: Path) -> None:
    """Pinning must never need the signing key itself: a private key PEM is refused."""
    path = tmp_path / "signing.pem"
    save_private_key(generate_key(), path)
    with pytest.raises(KeyFormatError, match="holds a private key"):
        load_trusted_keys(path)


async def test_cli_without_pins_is_consistency_only_with_exit_3(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """No pinned keys: the report says consistency only, not authenticity, and exits 3."""
    await build(db_url, signing_key)
    done = await run("verify", "--db", db_url)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("CONSISTENT ONLY, NOT AUTHENTICATED: 12 events")
    assert "consistency only, not authenticity" in done.stdout
    report = json.loads((await run("verify", "--db", db_url, "--json")).stdout)
    assert (report["ok"], report["authentic"], report["trust"]) == (True, False, "database")
    assert report["authenticity"] == "consistent_only"


async def test_cli_with_pinned_pem_or_fingerprint_is_authentic(
    db_url: str, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Pinned by PEM, by a fingerprint file or by --fingerprint: exit 0, authentic."""
    await build(db_url, signing_key)
    prints = tmp_path / "prints.txt"
    prints.write_text(fingerprint(signing_key.public_key()) + "\n")
    for pins in (
        ["--trusted-keys", str(pem_file(tmp_path, signing_key))],
        ["--trusted-keys", str(prints)],
        ["--fingerprint", fingerprint(signing_key.public_key())],
    ):
        done = await run("verify", "--db", db_url, *pins, "--json")
        assert done.returncode == 0, (pins, done.stdout, done.stderr)
        report = json.loads(done.stdout)
        assert (report["authentic"], report["trust"], report["signed_seq"]) == (
            True,
            "pinned",
            12,
        )


async def test_chain_resigned_by_an_unpinned_key_fails(
    db_url: str, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A re-signed log passes unpinned (exit 3) but fails with the real key pinned (exit 1)."""
    attacker = generate_key()
    await build(db_url, attacker)  # the database names the attacker's key as its own
    unpinned = await run("verify", "--db", db_url)
    assert unpinned.returncode == 3  # consistent: exactly why unpinned trust proves nothing
    pinned = await run(
        "verify", "--db", db_url, "--trusted-keys", str(pem_file(tmp_path, signing_key)), "--json"
    )
    assert pinned.returncode == 1, pinned.stderr
    report = json.loads(pinned.stdout)
    assert report["authenticity"] == "damaged"
    assert {p["damage"] for p in report["problems"]} == {"forged_checkpoint"}
    assert "signed by unknown key" in report["problems"][0]["detail"]


async def test_fingerprint_pins_only_the_stored_key_it_names(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    """A fingerprint admits the database's key with that fingerprint and no other stored key."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    await build(url, signing_key)
    log = await open_audit_log(url, create=False)
    try:
        good = await log.verify(
            trusted=TrustedKeys.of(fingerprints=[fingerprint(signing_key.public_key())])
        )
        other = await log.verify(
            trusted=TrustedKeys.of(fingerprints=[fingerprint(generate_key().public_key())])
        )
    finally:
        await log.close()
    assert good.authenticity is Authenticity.AUTHENTIC
    assert other.authenticity is Authenticity.DAMAGED
    assert other.first is not None
    assert other.first.damage is Damage.FORGED_CHECKPOINT


async def test_pinned_keys_but_no_checkpoint_is_not_authentic() -> None:
    """Events with no checkpoint signed by a pinned key are consistent, not authenticated."""
    key = generate_key()
    log = MemoryAuditLog(signing_key=None)
    for i in range(3):
        await log.append(make_event(i))
    report = await log.verify(trusted=TrustedKeys.of([key.public_key()]))
    assert (report.ok, report.trust, report.authenticity) == (
        True,
        Trust.PINNED,
        Authenticity.CONSISTENT_ONLY,
    )
    assert any("no checkpoint signed by a pinned key" in note for note in report.notes)


async def test_unsigned_tail_after_the_last_checkpoint_is_named() -> None:
    """Authentic through the last checkpoint; later events are listed as not signed yet."""
    key = generate_key()
    log = MemoryAuditLog(signing_key=key, checkpoint_every=5)
    for i in range(7):
        await log.append(make_event(i))
    report = await log.verify(trusted=TrustedKeys.of([key.public_key()]))
    assert (report.authenticity, report.signed_seq, report.head_seq) == (
        Authenticity.AUTHENTIC,
        5,
        7,
    )
    assert "events 6..7 come after the last checkpoint and are not signed yet" in report.notes


def test_pubkey_prints_the_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`audit pubkey --fingerprint` prints what a trusted-keys file or --fingerprint takes."""
    key = generate_key()
    path = tmp_path / "k.pem"
    save_private_key(key, path)
    assert main(["pubkey", "--key", str(path), "--fingerprint"]) == 0
    assert capsys.readouterr().out == fingerprint(key.public_key()) + "\n"


async def test_unreadable_trusted_keys_file_is_a_usage_error(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    """A trusted-keys file that is missing or malformed exits 2 with a message, no traceback."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    await build(url, signing_key)
    bad = tmp_path / "bad.txt"
    bad.write_text("xyz\n")
    for path in (bad, tmp_path / "missing.txt"):
        done = await run("verify", "--db", url, "--trusted-keys", str(path))
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("audit: ")
