"""Write a pack directory: the page, the data, the disclosure page, the screenshots, and last the
signed manifest (`audit.pack`) that lists every file's hash.

The output directory must be new, empty, or a pack this tool wrote before (its manifest lists
exactly the files it holds); anything else is refused, so `--out ~` cannot replace a home
directory's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.pack import MANIFEST, PACK_TYPE, pack_files, write_manifest
from audit.signing import key_id
from connector.accounts.disclosure import render_disclosure
from connector.accounts.scopes import Feature, scopes_for
from connector.errors import EvidencePackError
from connector.evidence.collect import SCREENSHOTS
from connector.evidence.render import render_index

EVIDENCE_JSON = "evidence.json"
DISCLOSURE_HTML = "disclosure.html"


def _previous_pack(directory: Path) -> bool:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("type") != PACK_TYPE:
        return False
    listed = manifest.get("files")
    return isinstance(listed, dict) and set(listed) == set(pack_files(directory))


def prepare(directory: Path) -> None:
    """Create `directory`, or empty a previous pack there; refuse anything else."""
    if directory.is_symlink():
        raise EvidencePackError(f"{directory} is a symbolic link; pass the real directory to --out")
    if directory.exists() and not directory.is_dir():
        raise EvidencePackError(f"{directory} exists and is not a directory; choose another --out")
    if directory.is_dir() and any(directory.iterdir()):
        if not _previous_pack(directory):
            raise EvidencePackError(
                f"{directory} is not empty and does not hold a pack this tool wrote; pass a new "
                "or empty directory to --out (nothing was written)"
            )
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def _ranges(segments: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The archive's ranges the chain was verified across (None: the live log alone)."""
    if segments is None:
        return None
    return [{k: r[k] for k in ("first", "last", "state")} for r in segments]


def write_pack(
    directory: Path,
    evidence: dict[str, Any],
    key: Ed25519PrivateKey,
    *,
    root: Path,
    app_name: str,
) -> dict[str, Any]:
    """Render every file, then (only then) prepare `directory` and write them; the manifest."""
    shots = [
        (root / source, {"file": f"screenshots/{Path(source).name}", "caption": caption})
        for source, caption in SCREENSHOTS
        if (root / source).is_file()
    ]
    signer = key_id(key.public_key())
    # The page as a user linking every feature would see it (the button goes nowhere here).
    pages = {
        DISCLOSURE_HTML: render_disclosure(
            app_name=app_name, scopes=scopes_for(Feature), confirm_action="#"
        ),
        EVIDENCE_JSON: json.dumps(evidence, indent=2, sort_keys=True) + "\n",
        "index.html": render_index(evidence, screenshots=[s for _, s in shots], signer=signer),
    }
    prepare(directory)
    for source, shot in shots:
        (directory / "screenshots").mkdir(exist_ok=True)
        shutil.copyfile(source, directory / shot["file"])
    for name, text in pages.items():
        (directory / name).write_text(text, encoding="utf-8")
    manifest = {
        "type": PACK_TYPE,
        "generated_at": evidence["generated_at"],
        "period": evidence["period"],
        "audit_log": evidence["audit_log"],
        "figures": evidence["figures"],
        "tests": {k: v for k, v in evidence["tests"].items() if k != "tests"},
        "chain": {k: evidence["chain"]["report"][k] for k in
                  ("authenticity", "trust", "events", "head_seq", "signed_seq", "witnessed")}
                 | {"segments": _ranges(evidence["chain"].get("segments"))},
    }  # fmt: skip
    write_manifest(directory, key, manifest)
    result: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    return result
