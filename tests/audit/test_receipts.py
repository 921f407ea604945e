"""Signed receipts: checked offline against pinned keys, and against the log with --db."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import open_audit_log
from audit.receipts import (
    ReceiptFormatError,
    ReceiptStatus,
    canonical_claims,
    sign_receipt,
    verify_receipt,
)
from audit.signing import generate_key, public_pem
from audit.trust import TrustedKeys, fingerprint
from tests.audit.helpers import make_event
from tests.audit.test_cli import run


def claims(seq: int = 3, digest: str = "ab" * 32, account: str = "a2") -> dict[str, Any]:
    return {"account_id": account, "status": "unlinked", "rows_deleted": {"t": 1},
            "audit_event": {"seq": seq, "hash": digest}}  # fmt: skip


def test_signed_receipt_verifies_under_a_pinned_key_or_fingerprint() -> None:
    """A receipt signed by the pinned key (given whole or as a fingerprint) is valid."""
    key = generate_key()
    receipt = sign_receipt(key, claims())
    for trusted in (TrustedKeys.of([key.public_key()]),
                    TrustedKeys.of(fingerprints=[fingerprint(key.public_key())])):  # fmt: skip
        check = verify_receipt(receipt, trusted)
        assert (check.status, check.problems) == (ReceiptStatus.VALID, [])
        assert (check.audit_seq, check.audit_hash) == (3, "ab" * 32)


def test_member_order_and_spacing_do_not_matter() -> None:
    """The signature covers canonical JSON: a re-serialised receipt still verifies."""
    key = generate_key()
    receipt = sign_receipt(key, claims())
    reread = json.loads(json.dumps(dict(reversed(list(receipt.items()))), indent=4))
    assert verify_receipt(reread, TrustedKeys.of([key.public_key()])).status is ReceiptStatus.VALID
    assert canonical_claims(reread) == canonical_claims(receipt)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r["rows_deleted"].update(t=0), "the receipt was altered"),
        (lambda r: r["audit_event"].update(seq=4), "the receipt was altered"),
        (lambda r: r.pop("signature"), "the receipt is not signed"),
        (lambda r: r.pop("audit_event"), "names no audit event"),
        (lambda r: r["signature"].update(key_id="0" * 16), "key_id does not match"),
        (lambda r: r["signature"].update(value="00"), "not 64 bytes of hex"),
    ],
)
def test_altered_or_incomplete_receipts_are_invalid(change: Any, problem: str) -> None:
    """Any change to a signed value, or a missing part, makes the receipt invalid."""
    key = generate_key()
    receipt = sign_receipt(key, claims())
    change(receipt)
    check = verify_receipt(receipt, TrustedKeys.of([key.public_key()]))
    assert check.status is ReceiptStatus.INVALID
    assert any(problem in p for p in check.problems), check.problems


def test_a_receipt_signed_by_an_unpinned_key_is_invalid() -> None:
    """The key a receipt carries is never trusted on its own word."""
    receipt = sign_receipt(generate_key(), claims())
    check = verify_receipt(receipt, TrustedKeys.of([generate_key().public_key()]))
    assert check.status is ReceiptStatus.INVALID
    assert "which is not pinned" in check.problems[0]
    unpinned = verify_receipt(receipt, None)
    assert unpinned.status is ReceiptStatus.UNPINNED


def test_a_receipt_must_name_its_audit_event() -> None:
    """Signing refuses claims that are not tied to an audit event."""
    with pytest.raises(ReceiptFormatError):
        sign_receipt(generate_key(), {"account_id": "a"})


async def test_cli_checks_the_receipt_against_the_log(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    """verify-receipt: 0 offline and with --db, 1 for another hash or account, 3 unpinned."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = await open_audit_log(url, signing_key=signing_key)
    receipts = [await log.append(make_event(i)) for i in range(3)]
    await log.close()
    pinned = tmp_path / "trusted.pem"
    pinned.write_text(public_pem(signing_key.public_key()))
    good, forged = tmp_path / "good.json", tmp_path / "forged.json"
    good.write_text(json.dumps(sign_receipt(signing_key, claims(3, receipts[2].hash))))
    forged.write_text(json.dumps(sign_receipt(signing_key, claims(3, "cd" * 32))))
    offline = await run("verify-receipt", str(good), "--trusted-keys", str(pinned))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.startswith("VALID: signed by a pinned key; audit event seq 3")
    done = await run("verify-receipt", str(good), "--trusted-keys", str(pinned), "--db", url,
                     "--json")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "valid"
    bad = await run("verify-receipt", str(forged), "--trusted-keys", str(pinned), "--db", url)
    assert bad.returncode == 1
    assert "the event at seq 3 has hash" in bad.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps(sign_receipt(signing_key, claims(3, receipts[2].hash, "zz"))))
    wrong = await run("verify-receipt", str(other), "--trusted-keys", str(pinned), "--db", url)
    assert wrong.returncode == 1
    assert "is not about account zz" in wrong.stdout
    unpinned = await run("verify-receipt", str(good))
    assert unpinned.returncode == 3
    assert unpinned.stdout.startswith("SIGNATURE OK, NOT AUTHENTICATED")


async def test_cli_refuses_what_is_not_a_receipt(tmp_path: Path) -> None:
    """A file that is not a JSON object is a usage error (exit 2) with a message."""
    path = tmp_path / "r.json"
    for text in ("not json", "[1, 2]"):
        path.write_text(text)
        done = await run("verify-receipt", str(path))
        assert done.returncode == 2
        assert done.stderr.startswith("audit: ReceiptFormatError")
