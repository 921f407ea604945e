"""Token vault: secrets encrypted at rest with AES-256-GCM under a rotating key ring.

Each secret is sealed with a fresh 96-bit random nonce. The associated data binds the ciphertext
to its owner (account id, or link-state id), its kind and the key id, so a ciphertext copied into
another row or column, or relabelled with another key id, fails to open instead of decrypting
into the wrong place. A sealed value is stored as text, `<key id>$<base64url(nonce||ct||tag)>`:
the key id sits beside the ciphertext, so old ciphertexts stay readable after a new key becomes
current, until `connector vault rotate` re-encrypts them.

Keys never live in the database. A `KeyProvider` yields the key ring:

- `EnvKeyProvider`: `CONNECTOR_VAULT_KEYS="kid:base64-32-bytes,kid2:..."`, first = current;
- `FileKeyProvider`: the same entries, one per line or comma-separated, in a file that only its
  owner may read (mode 0600);
- an external KMS fits the same protocol: `load()` returns the ring, typically by asking the KMS
  to unwrap data keys kept wrapped in a secret store (envelope encryption), so plaintext keys
  exist only in this process's memory. The vault itself never talks to the KMS.

Nothing here logs, and reprs name key ids only.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.errors import VaultError

if TYPE_CHECKING:
    from connector.settings import Settings

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the GCM standard nonce
KEY_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
AAD_PREFIX = b"connector-vault:v1"


class SecretKind(StrEnum):
    """What a sealed value is; part of the associated data."""

    REFRESH_TOKEN = "refresh_token"
    ACCESS_TOKEN = "access_token"
    EMAIL = "email"  # the linked Google address, shown to its owner
    CODE_VERIFIER = "code_verifier"  # PKCE verifier between redirect and callback


@dataclass(frozen=True)
class KeyRing:
    """Key id -> 32-byte key; `current` seals, every key opens."""

    current: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise VaultError(f"the current key id {self.current!r} is not in the key ring")
        for kid, key in self.keys.items():
            if not KEY_ID.fullmatch(kid):
                raise VaultError(f"vault key id {kid!r} must match {KEY_ID.pattern}")
            if len(key) != KEY_BYTES:
                raise VaultError(f"vault key {kid!r} must be {KEY_BYTES} bytes, got {len(key)}")

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current!r}, key_ids={sorted(self.keys)})"

    @classmethod
    def parse(cls, text: str, *, source: str) -> KeyRing:
        """Parse `kid:base64,...` (commas or newlines; `#` comments); the first is current."""
        entries = [
            e.strip()
            for line in text.splitlines()
            if not line.strip().startswith("#")
            for e in line.split(",")
            if e.strip()
        ]
        if not entries:
            raise VaultError(f"{source} holds no vault keys; create one with "
                             "`connector vault generate-key`")  # fmt: skip
        keys: dict[str, bytes] = {}
        for entry in entries:
            kid, sep, encoded = entry.partition(":")
            if not sep:
                raise VaultError(f"{source}: each key must be 'kid:base64', got a bare value")
            if kid in keys:
                raise VaultError(f"{source}: key id {kid!r} appears twice")
            try:
                keys[kid] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise VaultError(f"{source}: key {kid!r} is not valid base64") from None
        return cls(current=entries[0].partition(":")[0], keys=keys)


class KeyProvider(Protocol):
    """Where the key ring comes from (environment, file, or an external KMS)."""

    def load(self) -> KeyRing: ...


@dataclass(frozen=True)
class EnvKeyProvider:
    """Keys from `CONNECTOR_VAULT_KEYS` (or the given value)."""

    value: str

    def __repr__(self) -> str:
        return "EnvKeyProvider(CONNECTOR_VAULT_KEYS)"

    def load(self) -> KeyRing:
        return KeyRing.parse(self.value, source="CONNECTOR_VAULT_KEYS")


@dataclass(frozen=True)
class FileKeyProvider:
    """Keys from a file readable by its owner only."""

    path: Path

    def load(self) -> KeyRing:
        try:
            mode = self.path.stat().st_mode
            text = self.path.read_text("utf-8")
        except OSError as exc:
            raise VaultError(
                f"cannot read the vault key file {self.path}: {exc.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise VaultError(
                f"the vault key file {self.path} is readable by others; run chmod 600 on it"
            )
        return KeyRing.parse(text, source=str(self.path))


def key_provider_from_settings(settings: Settings) -> KeyProvider:
    """The configured provider: the key file if set, else `CONNECTOR_VAULT_KEYS`."""
    if settings.vault_key_file is not None:
        return FileKeyProvider(settings.vault_key_file)
    if settings.vault_keys:
        return EnvKeyProvider(settings.vault_keys)
    raise VaultError(
        "no vault keys configured: set CONNECTOR_VAULT_KEYS or CONNECTOR_VAULT_KEY_FILE "
        "(generate a key with `connector vault generate-key`)"
    )


def generate_key_entry(key_id: str) -> str:
    """A new random key as a `kid:base64` entry for the environment variable or key file."""
    if not KEY_ID.fullmatch(key_id):
        raise VaultError(f"vault key id {key_id!r} must match {KEY_ID.pattern}")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def _aad(owner_id: str, kind: SecretKind, key_id: str) -> bytes:
    # Length-prefixed fields: no choice of ids can make two different triples collide.
    parts = [owner_id.encode(), kind.value.encode(), key_id.encode()]
    return AAD_PREFIX + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


class Vault:
    """Seal and open secrets; the key ring is fixed for the vault's lifetime."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys.items()}

    @classmethod
    def from_provider(cls, provider: KeyProvider) -> Vault:
        return cls(provider.load())

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        return cls.from_provider(key_provider_from_settings(settings))

    def __repr__(self) -> str:
        return f"Vault(current={self._ring.current!r}, key_ids={sorted(self._ring.keys)})"

    @property
    def current_key_id(self) -> str:
        return self._ring.current

    def seal(self, plaintext: str, *, owner_id: str, kind: SecretKind) -> str:
        kid = self._ring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext.encode(), _aad(owner_id, kind, kid))
        return f"{kid}${base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, *, owner_id: str, kind: SecretKind) -> str:
        kid, blob = self._split(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise VaultError(
                f"a {kind} was sealed with vault key {kid!r}, which is not in the key ring; "
                "add the old key back until `connector vault rotate` has re-encrypted everything"
            )
        try:
            plain = cipher.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(owner_id, kind, kid)
            )
        except InvalidTag:
            raise VaultError(f"a sealed {kind} failed authentication (tampered or moved)") from None
        return plain.decode()

    def key_id_of(self, sealed: str) -> str:
        return self._split(sealed)[0]

    def needs_reseal(self, sealed: str) -> bool:
        return self.key_id_of(sealed) != self._ring.current

    def reseal(self, sealed: str, *, owner_id: str, kind: SecretKind) -> str:
        """Re-encrypt under the current key (a no-op for values already under it)."""
        if not self.needs_reseal(sealed):
            return sealed
        return self.seal(
            self.open(sealed, owner_id=owner_id, kind=kind), owner_id=owner_id, kind=kind
        )

    @staticmethod
    def _split(sealed: str) -> tuple[str, bytes]:
        kid, sep, encoded = sealed.partition("$")
        try:
            blob = base64.urlsafe_b64decode(encoded.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            blob = b""
        if not sep or not KEY_ID.fullmatch(kid) or len(blob) < NONCE_BYTES + 16:
            raise VaultError("a sealed value is malformed")
        return kid, blob
