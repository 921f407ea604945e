"""Signed receipts: a statement ("this account's data was deleted") tied to the audit event that
records it, signed with the checkpoint key so anyone can check it offline.

A receipt is a JSON object of claims that must include `audit_event: {seq, hash}` (the event's
place in the chain), plus a `signature` member:

    {"alg": "Ed25519", "key_id": ..., "public_key": PEM, "value": hex}

The signature covers `RECEIPT_CONTEXT` + the canonical JSON of every member but `signature`
(keys sorted, no whitespace, ASCII only), so reordering or re-spacing the document does not
break it and changing any value does. The public key travels with the receipt so that a holder
who pinned only its fingerprint can check it; trust still comes from the pinned set, never from
the receipt itself. `audit verify-receipt` checks the signature against pinned keys and, given
the audit database, that the event at `seq` has that hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.signing import KeyFormatError, key_id, public_key_from_pem, public_pem
from audit.trust import TrustedKeys

# Domain separation: a receipt signature can never pass as a checkpoint signature or vice versa.
RECEIPT_CONTEXT = b"audit-receipt-v1\x00"
_HASH = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


class ReceiptFormatError(ValueError):
    """A document that cannot be a receipt (not a JSON object, no audit event to tie to)."""


class ReceiptStatus(StrEnum):
    VALID = "valid"  # signed by a pinned key (and, if checked, matching the log)
    UNPINNED = "unpinned"  # the signature verifies, but no pinned key set was given
    INVALID = "invalid"  # malformed, altered, signed by another key, or not in the log


@dataclass(slots=True)
class ReceiptCheck:
    status: ReceiptStatus = ReceiptStatus.VALID
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    audit_seq: int = 0
    audit_hash: str = ""

    def fail(self, problem: str) -> ReceiptCheck:
        self.status = ReceiptStatus.INVALID
        self.problems.append(problem)
        return self


def canonical_claims(receipt: Mapping[str, Any]) -> bytes:
    """What is signed: every member but `signature`, as canonical JSON."""
    claims = {k: v for k, v in receipt.items() if k != "signature"}
    text = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return RECEIPT_CONTEXT + text.encode("ascii")


def sign_receipt(key: Ed25519PrivateKey, claims: Mapping[str, Any]) -> dict[str, Any]:
    """`claims` with a `signature` member added; `claims` must name its audit event."""
    event = claims.get("audit_event")
    if not isinstance(event, Mapping) or not isinstance(event.get("seq"), int):
        raise ReceiptFormatError("a receipt must name its audit event: audit_event {seq, hash}")
    public = key.public_key()
    document = dict(claims)
    document["signature"] = {
        "alg": "Ed25519",
        "key_id": key_id(public),
        "public_key": public_pem(public),
        "value": key.sign(canonical_claims(claims)).hex(),
    }
    return document


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
    signature = receipt.get("signature")
    if not isinstance(signature, Mapping):
        return check.fail("the receipt is not signed")
    value, pem = signature.get("value"), signature.get("public_key")
    if signature.get("alg") != "Ed25519" or not isinstance(value, str) or not isinstance(pem, str):
        return check.fail("the signature must be Ed25519 with a value and a public key")
    if not _SIGNATURE.fullmatch(value):
        return check.fail("the signature value is not 64 bytes of hex")
    try:
        public = public_key_from_pem(pem)
    except (KeyFormatError, ValueError):
        return check.fail("the receipt's public key is not an Ed25519 PEM")
    if signature.get("key_id") != key_id(public):
        return check.fail("the signature's key_id does not match its public key")
    try:
        public.verify(bytes.fromhex(value), canonical_claims(receipt))
    except InvalidSignature:
        return check.fail("the signature does not verify: the receipt was altered")
    if trusted is None:
        check.status = ReceiptStatus.UNPINNED
        check.notes.append(
            "the signature verifies, but with the key the receipt carries: pin trusted keys "
            "(--trusted-keys) to prove who signed it"
        )
    elif not trusted.admits(public):
        return check.fail(f"signed by key {key_id(public)}, which is not pinned")
    return check
