"""Signed receipts: a statement ("this account's data was deleted") tied to the audit event that
records it, signed with the checkpoint key so anyone can check it offline.

A receipt is a JSON object of claims that must include `audit_event: {seq, hash}` (the event's
place in the chain), signed as `audit.signed` describes under `RECEIPT_CONTEXT`.
`audit verify-receipt` checks the signature against pinned keys and, given
the audit database, that the event at `seq` has that hash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.signed import SignedCheck, SignedStatus, canonical, check_signature, sign
from audit.trust import TrustedKeys

# Domain separation: a receipt signature can never pass as a checkpoint signature or vice versa.
RECEIPT_CONTEXT = b"audit-receipt-v1\x00"
_HASH = re.compile(r"[0-9a-f]{64}")
# VALID: signed by a pinned key (and, if checked, matching the log); UNPINNED: the signature
# verifies, but no pinned key set was given; INVALID: malformed, altered, signed by another key,
# or not in the log.
ReceiptStatus = SignedStatus


class ReceiptFormatError(ValueError):
    """A document that cannot be a receipt (not a JSON object, no audit event to tie to)."""


@dataclass(slots=True)
class ReceiptCheck(SignedCheck):
    audit_seq: int = 0
    audit_hash: str = ""


def canonical_claims(receipt: Mapping[str, Any]) -> bytes:
    """What is signed: every member but `signature`, as canonical JSON."""
    return canonical(receipt, RECEIPT_CONTEXT)


def sign_receipt(key: Ed25519PrivateKey, claims: Mapping[str, Any]) -> dict[str, Any]:
    """`claims` with a `signature` member added; `claims` must name its audit event."""
    event = claims.get("audit_event")
    if not isinstance(event, Mapping) or not isinstance(event.get("seq"), int):
        raise ReceiptFormatError("a receipt must name its audit event: audit_event {seq, hash}")
    return sign(key, claims, RECEIPT_CONTEXT)


def verify_receipt(receipt: Mapping[str, Any], trusted: TrustedKeys | None) -> ReceiptCheck:
    """Check the structure and the signature, and whether a pinned key made it."""
    check = ReceiptCheck()
    event = receipt.get("audit_event")
    if not isinstance(event, Mapping):
        return check.fail("the receipt names no audit event (audit_event {seq, hash})")
    seq, digest = event.get("seq"), event.get("hash")
    if (
        type(seq) is not int
        or seq < 1
        or not isinstance(digest, str)
        or not _HASH.fullmatch(digest)
    ):
        return check.fail("audit_event must hold a positive seq and a 64-digit hex hash")
    check.audit_seq, check.audit_hash = seq, digest
    check_signature(
        check, receipt, RECEIPT_CONTEXT, trusted, subject="the receipt", altered="the receipt"
    )
    return check
