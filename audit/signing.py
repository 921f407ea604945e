"""Ed25519 keys and signed checkpoints (via `cryptography`)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.encoding import format_time
from audit.records import Checkpoint


class KeyFormatError(ValueError):
    """A key file that does not hold an Ed25519 key of the expected kind."""


# Domain separation: a checkpoint signature can never be replayed as any other signed message.
CHECKPOINT_CONTEXT = b"audit-checkpoint-v1\x00"


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def save_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a PKCS#8 PEM readable by its owner only; refuses to overwrite an existing key."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{path} does not hold an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Accept a public-key PEM, or a private-key PEM (its public half is used)."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"{path} does not hold an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError("not an Ed25519 public key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _message(seq: int, head_hash: bytes, time: str) -> bytes:
    return CHECKPOINT_CONTEXT + seq.to_bytes(8, "big") + head_hash + time.encode("ascii")


def sign_checkpoint(
    key: Ed25519PrivateKey, seq: int, head_hash: bytes, now: datetime | None = None
) -> Checkpoint:
    time = format_time(now or datetime.now(UTC))
    signature = key.sign(_message(seq, head_hash, time))
    return Checkpoint(seq, head_hash.hex(), time, key_id(key.public_key()), signature.hex())


def checkpoint_is_valid(key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    try:
        message = _message(checkpoint.seq, bytes.fromhex(checkpoint.head_hash), checkpoint.time)
        key.verify(bytes.fromhex(checkpoint.signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {"type": "audit.checkpoint", "version": 1, **asdict(checkpoint)}
