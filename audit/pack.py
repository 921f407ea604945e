"""An evidence pack's manifest: signed with the checkpoint key, checked offline and against the log.

A pack is a directory: `manifest.json` plus the files it lists (`index.html`, copied
screenshots, the receipts...). The manifest holds the SHA-256 of every other file, the period,
the audit log's head when the pack was made (`audit_log.head_seq`, `head_hash`) and the figures
(`audit.pack_figures`), signed as `audit.signed` describes (like a receipt) under `PACK_CONTEXT`,
so a pack signature can never pass as a receipt or a checkpoint. Trust comes from the pinned
keys, never from the key the manifest carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.segments import file_digest
from audit.signed import SignedCheck, SignedStatus, check_signature, sign
from audit.trust import TrustedKeys

PACK_TYPE = "connector.evidence_pack.v1"
PACK_CONTEXT = b"audit-evidence-pack-v1\x00"
MANIFEST = "manifest.json"
# VALID: signed by a pinned key, every file as listed (and the log agrees); UNPINNED: intact and
# the signature verifies, but no key was pinned; INVALID: a file altered, added or missing, a bad
# signature, or the log differs.
PackStatus = SignedStatus


@dataclass(slots=True)
class PackCheck(SignedCheck):
    manifest: dict[str, Any] = field(default_factory=dict)


def pack_files(directory: Path) -> dict[str, str]:
    """Every file under `directory` but the manifest (POSIX relative path -> SHA-256)."""
    return {
        path.relative_to(directory).as_posix(): file_digest(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() != MANIFEST
    }


def sign_manifest(key: Ed25519PrivateKey, manifest: dict[str, Any]) -> dict[str, Any]:
    return sign(key, manifest, PACK_CONTEXT)


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
    check_signature(
        check, manifest, PACK_CONTEXT, trusted, subject="the manifest", altered=MANIFEST
    )
    _files(directory, manifest, check)
    return check
