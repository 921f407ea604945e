"""Pinned checkpoint keys: which public keys a verifier trusts, from outside the audit database.

A checkpoint only proves authenticity if the key that signed it is trusted for reasons the
database cannot influence: whoever can write the database can also write `audit_keys` and
re-sign a rewritten chain with a key of their own. So the keys come from a file the operator
keeps elsewhere (`--trusted-keys`, `CONNECTOR_AUDIT_TRUSTED_KEYS_FILE`), holding either whole
public keys (PEM) or SHA-256 fingerprints of them (hex, one per line). A fingerprint pins the key
stored in the database with that fingerprint; any other stored key is ignored.

Without pinned keys a verification proves consistency only, and says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.signing import KeyFormatError, key_id, public_key_from_pem
from audit.verify import Trust, VerifyReport

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\s.*?-----END \1-----", re.DOTALL)


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, lowercase hex (`audit pubkey --fingerprint`)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class TrustedKeys:
    """Public keys given whole, and fingerprints of keys whose PEM the database may supply."""

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)  # key id -> key
    fingerprints: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, keys: Iterable[Ed25519PublicKey] = (), fingerprints: Iterable[str] = ()
    ) -> TrustedKeys:
        prints = frozenset(normalise_fingerprint(f) for f in fingerprints)
        return cls({key_id(k): k for k in keys}, prints)

    def __bool__(self) -> bool:
        return bool(self.keys or self.fingerprints)

    def merged(self, other: TrustedKeys) -> TrustedKeys:
        return TrustedKeys({**self.keys, **other.keys}, self.fingerprints | other.fingerprints)

    def admits(self, key: Ed25519PublicKey) -> bool:
        pinned = self.keys.get(key_id(key))
        return fingerprint(key) in self.fingerprints or (
            pinned is not None and fingerprint(pinned) == fingerprint(key)
        )

    def resolve(self, stored: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
        """The verifier's key map: every whole pinned key, plus each stored key (key id -> PEM)
        whose fingerprint is pinned. Stored keys that are not pinned are left out, so a
        checkpoint they signed is reported as signed by an unknown key."""
        keys = dict(self.keys)
        for stored_id, pem in stored.items():
            try:
                key = public_key_from_pem(pem)
            except (KeyFormatError, ValueError):
                continue  # a damaged key row pins nothing
            if key_id(key) == stored_id and fingerprint(key) in self.fingerprints:
                keys[stored_id] = key
        return keys


def normalise_fingerprint(text: str) -> str:
    value = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _FINGERPRINT.fullmatch(value):
        raise KeyFormatError(
            f"{text.strip()[:80]!r} is not a SHA-256 key fingerprint (64 hex digits)"
        )
    return value


def parse_trusted_keys(text: str, source: str) -> TrustedKeys:
    """PEM public keys and hex fingerprints, one per line; `#` starts a comment."""
    keys: list[Ed25519PublicKey] = []
    for match in _PEM_BLOCK.finditer(text):
        if "PRIVATE" in match.group(1):
            raise KeyFormatError(f"{source} holds a private key: pin the public key only")
        try:
            keys.append(public_key_from_pem(match.group(0)))
        except (KeyFormatError, ValueError) as exc:
            raise KeyFormatError(f"{source}: a PEM block is not an Ed25519 public key") from exc
    prints: list[str] = []
    # PEM blocks become blank lines, so line numbers in messages still match the file.
    rest = _PEM_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for number, raw in enumerate(rest.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            try:
                prints.append(normalise_fingerprint(line))
            except KeyFormatError as exc:
                raise KeyFormatError(f"{source} line {number}: {exc}") from None
    trusted = TrustedKeys.of(keys, prints)
    if not trusted:
        raise KeyFormatError(f"{source} pins no key (expected PEM public keys or fingerprints)")
    return trusted


def load_trusted_keys(path: Path) -> TrustedKeys:
    return parse_trusted_keys(path.read_text(encoding="utf-8"), str(path))


CONSISTENCY_ONLY = (
    "consistency only, not authenticity: the checkpoint keys were read from the audit "
    "database itself, so a rewritten and re-signed chain would pass; pin trusted keys "
    "(--trusted-keys, CONNECTOR_AUDIT_TRUSTED_KEYS_FILE)"
)
NOTHING_SIGNED = (
    "consistency only, not authenticity: no checkpoint signed by a pinned key covers the log"
)


def checkpoint_keys(
    trusted: TrustedKeys | None, stored: Mapping[str, str]
) -> tuple[dict[str, Ed25519PublicKey], Trust]:
    """The keys to check checkpoints with, and whether they are pinned or the database's own."""
    if trusted:
        return trusted.resolve(stored), Trust.PINNED
    keys: dict[str, Ed25519PublicKey] = {}
    for stored_id, pem in stored.items():
        try:
            keys[stored_id] = public_key_from_pem(pem)
        except (KeyFormatError, ValueError):
            continue  # its checkpoints are then reported as signed by an unknown key
    return keys, Trust.DATABASE


def assess(report: VerifyReport, trust: Trust) -> VerifyReport:
    """Record where the keys came from, and say plainly when that proves consistency only."""
    report.trust = trust
    if report.ok and trust is Trust.DATABASE:
        report.notes.append(CONSISTENCY_ONLY)
    elif report.ok and report.events and not report.signed_seq:
        report.notes.append(NOTHING_SIGNED)
    if report.ok and report.signed_seq and report.signed_seq < report.head_seq:
        first, last = report.signed_seq + 1, report.head_seq
        report.notes.append(
            f"event {last} comes after the last checkpoint and is not signed yet"
            if first == last
            else f"events {first}..{last} come after the last checkpoint and are not signed yet"
        )
    return report
