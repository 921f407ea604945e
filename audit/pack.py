"""An evidence pack's manifest: signed with the checkpoint key, checked offline and against the log.

A pack is a directory: `manifest.json` plus the files it lists (`index.html`, copied
screenshots, the receipts...). The manifest holds the SHA-256 of every other file, the period,
the audit log's head when the pack was made (`audit_log.head_seq`, `head_hash`) and the figures
(`audit.pack_figures`). Its `signature` member is like a receipt's (`audit.receipts`):

    {"alg": "Ed25519", "key_id": ..., "public_key": PEM, "value": hex}

over `PACK_CONTEXT` + the canonical JSON of every other member, so a pack signature can never
pass as a receipt or a checkpoint. Trust comes from the pinned keys, never from the key the
manifest carries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.signing import KeyFormatError, key_id, public_key_from_pem, public_pem
from audit.trust import TrustedKeys

PACK_TYPE = "connector.evidence_pack.v1"
PACK_CONTEXT = b"audit-evidence-pack-v1\x00"
MANIFEST = "manifest.json"


class PackStatus(StrEnum):
    VALID = "valid"  # signed by a pinned key, every file as listed (and the log agrees)
    UNPINNED = "unpinned"  # intact and the signature verifies, but no key was pinned
    INVALID = "invalid"  # a file altered, added or missing, a bad signature, or the log differs


@dataclass(slots=True)
class PackCheck:
    status: PackStatus = PackStatus.VALID
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def fail(self, problem: str) -> PackCheck:
        self.status = PackStatus.INVALID
        self.problems.append(problem)
        return self


def canonical(manifest: dict[str, Any]) -> bytes:
    claims = {k: v for k, v in manifest.items() if k != "signature"}
    text = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return PACK_CONTEXT + text.encode("ascii")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_files(directory: Path) -> dict[str, str]:
    """Every file under `directory` but the manifest (POSIX relative path -> SHA-256)."""
    return {
        path.relative_to(directory).as_posix(): file_digest(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() != MANIFEST
    }


def sign_manifest(key: Ed25519PrivateKey, manifest: dict[str, Any]) -> dict[str, Any]:
    public = key.public_key()
    signed = {k: v for k, v in manifest.items() if k != "signature"}
    signed["signature"] = {
        "alg": "Ed25519",
        "key_id": key_id(public),
        "public_key": public_pem(public),
        "value": key.sign(canonical(signed)).hex(),
    }
    return signed


def write_manifest(directory: Path, key: Ed25519PrivateKey, manifest: dict[str, Any]) -> None:
    """Hash every file already in `directory`, sign, and write `manifest.json` last."""
    document = sign_manifest(key, {**manifest, "files": pack_files(directory)})
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")


def _read(directory: Path, check: PackCheck) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not directory.is_dir():
        check.fail(f"{directory} is not a directory")
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.fail(f"{directory} holds no {MANIFEST}: not an evidence pack")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        check.fail(f"{MANIFEST} is not JSON: {exc}")
        return None
    if not isinstance(document, dict) or document.get("type") != PACK_TYPE:
        check.fail(f"{MANIFEST} is not a {PACK_TYPE} manifest")
        return None
    return document


def _signature(manifest: dict[str, Any], trusted: TrustedKeys | None, check: PackCheck) -> None:
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        check.fail("the manifest is not signed")
        return
    value, pem = signature.get("value"), signature.get("public_key")
    if signature.get("alg") != "Ed25519" or not isinstance(value, str) or not isinstance(pem, str):
        check.fail("the signature must be Ed25519 with a value and a public key")
        return
    try:
        public = public_key_from_pem(pem)
        public.verify(bytes.fromhex(value), canonical(manifest))
    except (KeyFormatError, ValueError):
        check.fail("the manifest's public key or signature value is malformed")
        return
    except InvalidSignature:
        check.fail(f"the signature does not verify: {MANIFEST} was altered")
        return
    if signature.get("key_id") != key_id(public):
        check.fail("the signature's key_id does not match its public key")
    elif trusted is None:
        check.status = PackStatus.UNPINNED
        check.notes.append(
            "the signature verifies with the key the pack carries: pin trusted keys "
            "(--trusted-keys) to prove who signed it"
        )
    elif not trusted.admits(public):
        check.fail(f"signed by key {key_id(public)}, which is not pinned")


def _files(directory: Path, manifest: dict[str, Any], check: PackCheck) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        check.fail("the manifest lists no files")
        return
    found = pack_files(directory)
    for name in sorted(set(listed) - set(found)):
        check.fail(f"{name} is listed in the manifest but missing from the pack")
    for name in sorted(set(found) - set(listed)):
        check.fail(f"{name} is in the pack but not in the manifest (added after signing)")
    for name in sorted(set(found) & set(listed)):
        if found[name] != listed[name]:
            check.fail(f"{name} was altered: its SHA-256 is not the one the manifest lists")


def check_pack(directory: Path, trusted: TrustedKeys | None) -> PackCheck:
    """The manifest's signature and every file's hash (offline: no audit log needed)."""
    check = PackCheck()
    manifest = _read(directory, check)
    if manifest is None:
        return check
    check.manifest = manifest
    _signature(manifest, trusted, check)
    _files(directory, manifest, check)
    return check
