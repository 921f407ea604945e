"""The deletion receipt: signed with the checkpoint key, tied to the audit event of the unlink."""

from __future__ import annotations

import json
from pathlib import Path

from audit.receipts import ReceiptStatus, verify_receipt
from audit.signing import generate_key, public_pem
from audit.trust import TrustedKeys
from audit.vocab import Action
from connector.accounts.unlink import Unlinker
from tests.audit.test_cli import run
from tests.linking.conftest import FAST, link_account, link_config


def signing_unlinker(w, key) -> Unlinker:
    endpoints = link_config(w.emu).endpoints(w.session, FAST)
    return Unlinker(w.engine, w.vault, endpoints, w.authority(), signing_key=key)


async def test_receipt_names_the_unlink_event_and_is_signed(sqlite_linking) -> None:
    """The receipt names the unlink event's seq and hash and verifies under the pinned key."""
    w = sqlite_linking
    key = generate_key()
    account = await link_account(w)
    document = (await signing_unlinker(w, key).unlink(account.id, user_id="user-1")).as_dict()
    seq = w.audit.rows[-1][0]
    assert w.audit.events[-1].action is Action.ACCOUNT_UNLINKED
    assert document["audit_event"]["seq"] == seq
    assert document["audit_event"]["hash"] == w.audit.rows[-1][9].hex()
    assert document["audit_event"]["id"] == w.audit.events[-1].event_id
    assert document["account_id"] == account.id
    check = verify_receipt(document, TrustedKeys.of([key.public_key()]))
    assert (check.status, check.problems) == (ReceiptStatus.VALID, [])


async def test_receipt_verifies_offline_with_the_audit_cli(sqlite_linking, tmp_path: Path) -> None:
    """`audit verify-receipt` checks the JSON the API returned with only the pinned key."""
    w = sqlite_linking
    key = generate_key()
    account = await link_account(w)
    receipt = await signing_unlinker(w, key).unlink(account.id, user_id="user-1")
    path, pinned = tmp_path / "receipt.json", tmp_path / "trusted.pem"
    path.write_text(json.dumps(receipt.as_dict()))
    pinned.write_text(public_pem(key.public_key()))
    done = await run("verify-receipt", str(path), "--trusted-keys", str(pinned))
    assert done.returncode == 0, done.stdout + done.stderr
    tampered = receipt.as_dict()
    tampered["revocation"] = "revoked" if tampered["revocation"] != "revoked" else "failed"
    path.write_text(json.dumps(tampered))
    assert (await run("verify-receipt", str(path), "--trusted-keys", str(pinned))).returncode == 1


async def test_without_a_signing_key_the_receipt_is_tied_but_unsigned(sqlite_linking) -> None:
    """No checkpoint key configured: the receipt still names its audit event, unsigned."""
    w = sqlite_linking
    account = await link_account(w)
    document = (await signing_unlinker(w, None).unlink(account.id, user_id="user-1")).as_dict()
    assert document["audit_event"]["seq"] == w.audit.rows[-1][0]
    assert "signature" not in document
    assert verify_receipt(document, None).problems == ["the receipt is not signed"]
