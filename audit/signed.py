"""Signed JSON documents, checked offline: deletion receipts (`audit.receipts`) and evidence-pack
manifests (`audit.pack`) share the one signature format and its check.

A signed document is a JSON object with a `signature` member

    {"alg": "Ed25519", "key_id": ..., "public_key": PEM, "value": hex}

over a domain-separation context + the canonical JSON of every other member (keys sorted, no
whitespace, ASCII only), so reordering or re-spacing the document does not break it, changing any
value does, and a signature made for one kind of document can never pass as another's (or as a
checkpoint's). The public key travels with the document so that a holder who pinned only its
fingerprint can check it; trust still comes from the pinned set, never from the document itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.signing import KeyFormatError, key_id, public_key_from_pem, public_pem
from audit.trust import TrustedKeys

_SIGNATURE = re.compile(r"[0-9a-f]{128}")


class SignedStatus(StrEnum):
    VALID = "valid"  # signed by a pinned key (and, where checked, matching the log)
    UNPINNED = "unpinned"  # intact and the signature verifies, but no pinned key set was given
    INVALID = "invalid"  # malformed, altered, signed by another key, or not matching the log


@dataclass(slots=True)
class SignedCheck:
    status: SignedStatus = SignedStatus.VALID
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> Self:
        self.status = SignedStatus.INVALID
        self.problems.append(problem)
        return self


def canonical(document: Mapping[str, Any], context: bytes) -> bytes:
    """What is signed: `context`, then every member but `signature` as canonical JSON."""
    claims = {k: v for k, v in document.items() if k != "signature"}
    text = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return context + text.encode("ascii")


def sign(key: Ed25519PrivateKey, document: Mapping[str, Any], context: bytes) -> dict[str, Any]:
    """`document` with its `signature` member (any earlier one replaced)."""
    public = key.public_key()
    signed = {k: v for k, v in document.items() if k != "signature"}
    signed["signature"] = {
        "alg": "Ed25519",
        "key_id": key_id(public),
        "public_key": public_pem(public),
        "value": key.sign(canonical(signed, context)).hex(),
    }
    return signed


def check_signature(
    check: SignedCheck,
    document: Mapping[str, Any],
    context: bytes,
    trusted: TrustedKeys | None,
    *,
    subject: str,
    altered: str,
) -> bool:
    """Record in `check` whether `document` is signed, intact, and by a pinned key; True when
    nothing failed. `subject` names the document ("the receipt"), `altered` what was altered
    when the signature does not verify (the receipt, a file)."""
    signature = document.get("signature")
    if not isinstance(signature, Mapping):
        check.fail(f"{subject} is not signed")
        return False
    value, pem = signature.get("value"), signature.get("public_key")
    if signature.get("alg") != "Ed25519" or not isinstance(value, str) or not isinstance(pem, str):
        check.fail("the signature must be Ed25519 with a value and a public key")
        return False
    if not _SIGNATURE.fullmatch(value):
        check.fail("the signature value is not 64 bytes of hex")
        return False
    try:
        public = public_key_from_pem(pem)
    except (KeyFormatError, ValueError):
        check.fail(f"{subject}'s public key is not an Ed25519 PEM")
        return False
    if signature.get("key_id") != key_id(public):
        check.fail("the signature's key_id does not match its public key")
        return False
    try:
        public.verify(bytes.fromhex(value), canonical(document, context))
    except InvalidSignature:
        check.fail(f"the signature does not verify: {altered} was altered")
        return False
    if trusted is None:
        check.status = SignedStatus.UNPINNED
        check.notes.append(
            f"the signature verifies, but with the key {subject} carries: pin trusted keys "
            "(--trusted-keys) to prove who signed it"
        )
    elif not trusted.admits(public):
        check.fail(f"signed by key {key_id(public)}, which is not pinned")
        return False
    return True
