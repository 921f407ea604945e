"""Gather the pack's sections from the code's own tables, the audit log and the repository.

Everything here is data (JSON values): `render` turns it into the page a person reads and
`pack` into the manifest a machine checks. Nothing secret is read into it: the vault appears as
its algorithm and key ids, never a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.cli_verify import report_json
from audit.encoding import format_time
from audit.log import AuditLog
from audit.pack_figures import Period, period_figures
from audit.records import QueryFilter
from audit.segment_verify import verify_across
from audit.segments import read_archive
from audit.signing import checkpoint_json
from audit.trust import TrustedKeys
from audit.vocab import FORBIDDEN_PURPOSES, Action
from connector.accounts import scopes
from connector.accounts.disclosure import POLICY_URL, limited_use_statement
from connector.accounts.vault import KEY_BYTES, KeyRing
from connector.evidence.controls import CONTROLS, WHY_NOT_NARROWER
from connector.policy.rules import DEFAULT_RULE, GRANTS, PROHIBITION_RULE

ROOT = Path(__file__).resolve().parents[2]
THREAT_MODEL = "docs/threat-model.md"
# Screenshots of the consent path, copied into the pack when the repository has them.
SCREENSHOTS: tuple[tuple[str, str], ...] = (
    ("docs/screenshots/02-disclosure.png", "The Limited Use disclosure, before Google"),
    ("docs/screenshots/03-google-consent.png", "Google's consent page (the emulator's)"),
)


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the pack's inputs are: the audit log and its trust anchors, and the vault ring."""

    log: AuditLog
    trusted: TrustedKeys | None
    witness: Path | None
    period: Period
    ring: KeyRing | None = None
    app_name: str = "The platform"
    root: Path = ROOT
    segments: Path | None = None  # the audit archive (`audit archive`), verified across


def scope_section() -> list[dict[str, Any]]:
    rows = []
    for feature in scopes.Feature:
        scope = scopes.required_scope(feature)
        rows.append({
            "feature": feature.value, "scope": scope,
            "default": feature in scopes.DEFAULT_FEATURES,
            "purpose": scopes.SCOPE_PURPOSES[scope], "why_not_narrower": WHY_NOT_NARROWER[scope],
        })  # fmt: skip
    email = scopes.USERINFO_EMAIL
    rows.append({"feature": "address", "scope": email, "default": True,
                 "purpose": scopes.SCOPE_PURPOSES[email],
                 "why_not_narrower": WHY_NOT_NARROWER[email]})  # fmt: skip
    return rows


def disclosure_section(app_name: str) -> dict[str, Any]:
    return {
        "statement": limited_use_statement(app_name),
        "policy_url": POLICY_URL,
        "scopes": {s: scopes.SCOPE_PURPOSES[s] for s in scopes.SCOPE_PURPOSES},
        "never_requested": sorted(scopes.FORBIDDEN_SCOPES),
    }


def rules_section() -> dict[str, Any]:
    grants = [
        {
            "name": g.name,
            "actor": g.actor.value,
            "operations": sorted(o.value for o in g.operations),
            "purposes": sorted(p.value for p in g.purposes),
            "conditions": [type(c).__name__ for c in g.conditions],
        }
        for g in GRANTS
    ]
    return {
        "grants": grants,
        "forbidden_purposes": sorted(p.value for p in FORBIDDEN_PURPOSES),
        "prohibition_rule": PROHIBITION_RULE,
        "default_rule": DEFAULT_RULE,
    }


def segment_ranges(directory: Path) -> list[dict[str, Any]]:
    """The archive's ranges in seq order: sealed (rows kept), dropped (a tombstone) or missing."""
    ranges = []
    for entry in read_archive(directory):
        state = "archived" if entry.rows else "dropped" if entry.tombstone else "missing"
        tomb = entry.tombstone or {}
        ranges.append({
            "first": entry.first, "last": entry.last, "state": state,
            "dropped_at": tomb.get("dropped_at"), "reason": tomb.get("reason"),
        })  # fmt: skip
    return ranges


async def chain_section(sources: Sources) -> dict[str, Any]:
    """The chain verified as `audit verify` does: across the archive when there is one, so a
    start dropped behind a signed tombstone is shown as such, not as deleted events."""
    trusted, witness = sources.trusted, sources.witness
    if sources.segments is None:
        report = await sources.log.verify(trusted=trusted, witness=witness)
    else:
        report = await verify_across(sources.log, sources.segments, trusted=trusted,
                                     witness=witness)  # fmt: skip
    checkpoints = [checkpoint_json(c) for c in await sources.log.checkpoints()]
    return {
        "report": report_json(report),
        "checkpoints": checkpoints,
        "witness": None if witness is None else witness.name,
        "pinned": trusted is not None,
        "segments": None if sources.segments is None else segment_ranges(sources.segments),
    }


async def token_section(sources: Sources) -> dict[str, Any]:
    rotations = [
        {"seq": s.seq, "time": format_time(s.event.time), "reasons": list(s.event.reasons)}
        async for s in sources.log.iter_events(QueryFilter(action=Action.VAULT_KEY_ROTATED))
    ]
    ring = sources.ring
    return {
        "algorithm": f"AES-{KEY_BYTES * 8}-GCM, 96-bit random nonce per value; associated data "
        "binds each ciphertext to its owner, its kind and its key id",
        "at_rest": "refresh and access tokens, the linked address, PKCE verifiers",
        "key_source": "environment, a 0600 key file or a KMS; never the database",
        "current_key_id": None if ring is None else ring.current,
        "key_ids": None if ring is None else sorted(ring.keys),
        "rotations": rotations,
    }


def threat_model(root: Path) -> dict[str, Any]:
    path = root / THREAT_MODEL
    if not path.is_file():
        return {"path": THREAT_MODEL, "intro": "", "header": [], "rows": []}
    lines = path.read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    intro = " ".join(line for line in lines if line and not line.startswith(("|", "#")))
    return {
        "path": THREAT_MODEL,
        "intro": intro,
        "header": cells[0] if cells else [],
        "rows": list(cells[2:]),
    }


def controls_section() -> list[dict[str, Any]]:
    return [
        {"requirement": c.requirement, "text": c.text, "control": c.control,
         "code": list(c.code), "tests": list(c.tests)}
        for c in CONTROLS
    ]  # fmt: skip


async def collect(sources: Sources, tests: dict[str, Any], generated_at: str) -> dict[str, Any]:
    """Every section, the head of the log it was computed to, and the figures."""
    chain = await chain_section(sources)
    head = chain["report"]
    figures = await period_figures(sources.log.store, sources.period, through_seq=head["head_seq"])
    return {
        "generated_at": generated_at,
        "period": sources.period.as_json(),
        "audit_log": {"head_seq": head["head_seq"], "head_hash": head["head_hash"]},
        "scopes": scope_section(),
        "disclosure": disclosure_section(sources.app_name),
        "rules": rules_section(),
        "tests": tests,
        "figures": figures,
        "chain": chain,
        "tokens": await token_section(sources),
        "threat_model": threat_model(sources.root),
        "controls": controls_section(),
    }
