"""Damage made behind the engine's back is found, with the first bad seq and its kind."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Damage, open_audit_log
from audit.chain import Pending, link, row_of
from audit.signing import generate_key, key_id
from tests.audit.helpers import make_event, raw_execute

N = 30


async def build(url: str, key: Ed25519PrivateKey) -> None:
    log = await open_audit_log(url, signing_key=key, checkpoint_every=10)
    for i in range(N):
        await log.append(make_event(i))
    await log.close()  # signs a final checkpoint at seq 30


async def damage_of(url: str, key: Ed25519PrivateKey) -> tuple[int, Damage] | None:
    log = await open_audit_log(url, create=False)
    try:
        report = await log.verify(public_keys={key_id(key.public_key()): key.public_key()})
    finally:
        await log.close()
    first = report.first
    return None if first is None else (first.seq, first.damage)


async def test_intact_log_verifies(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """An untouched log has no problems."""
    await build(db_url, signing_key)
    assert await damage_of(db_url, signing_key) is None


_FORGED_SIGNATURE = generate_key().sign(b"anything").hex()  # a signature by another key

TAMPERING = [
    # Editing an event's body is reported as altered at that seq.
    pytest.param(
        ["UPDATE audit_events SET body = replace(body, '\"u1\"', '\"u2\"') WHERE seq = 8"],
        (8, Damage.ALTERED),
        id="altered_body",
    ),
    # Editing only a query column (to hide an event) is reported as altered.
    pytest.param(
        ["UPDATE audit_events SET account_id = 'other' WHERE seq = 12"],
        (12, Damage.ALTERED),
        id="altered_index_column",
    ),
    # Deleting an event is reported as deleted at the missing seq.
    pytest.param(
        ["DELETE FROM audit_events WHERE seq = 5"], (5, Damage.DELETED), id="deleted_event"
    ),
    # Deleting an event and closing the gap is still reported as deleted.
    pytest.param(
        [
            "DELETE FROM audit_events WHERE seq = 5",
            "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 5",
            "UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000",
        ],
        (5, Damage.DELETED),
        id="deleted_and_renumbered",
    ),
    # A forged row slipped between two events is reported as inserted.
    pytest.param(
        [
            "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 7",
            "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000",
            "INSERT INTO audit_events SELECT 7, time, account_id, actor_id, action, purpose,"
            " decision, body, prev_hash, hash FROM audit_events WHERE seq = 3",
        ],
        (7, Damage.INSERTED),
        id="inserted_event",
    ),
    # Swapping two adjacent events is reported as reordered.
    pytest.param(
        [
            "UPDATE audit_events SET seq = 1000 WHERE seq = 14",
            "UPDATE audit_events SET seq = 14 WHERE seq = 15",
            "UPDATE audit_events SET seq = 15 WHERE seq = 1000",
        ],
        (14, Damage.REORDERED),
        id="reordered_events",
    ),
    # Cutting off the tail that a signed checkpoint covers is reported as truncated.
    pytest.param(
        ["DELETE FROM audit_events WHERE seq > 24"],
        (25, Damage.TRUNCATED),
        id="truncated_after_checkpoint",
    ),
    # A checkpoint re-signed with another key, or edited, is reported as forged.
    pytest.param(
        [f"UPDATE audit_checkpoints SET signature = '{_FORGED_SIGNATURE}' WHERE seq = 20"],
        (20, Damage.FORGED_CHECKPOINT),
        id="forged_checkpoint",
    ),
]


@pytest.mark.parametrize(("statements", "expected"), TAMPERING)
async def test_tampering_is_found(
    db_url: str,
    signing_key: Ed25519PrivateKey,
    statements: list[str],
    expected: tuple[int, Damage],
) -> None:
    """Each kind of damage is reported with the first bad seq and its kind."""
    await build(db_url, signing_key)
    await raw_execute(db_url, statements)
    assert await damage_of(db_url, signing_key) == expected


async def test_rewritten_chain_caught_by_checkpoint(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """Rewriting a whole stretch with recomputed hashes contradicts the signed checkpoint."""
    await build(db_url, signing_key)
    # Replace the chain with a self-consistent one built from different events.
    forged = link(0, bytes(32), [Pending.of(make_event(i + 100)) for i in range(N)])
    statements = ["DELETE FROM audit_events"]
    for item in forged:
        seq, *texts, prev_hash, digest = row_of(item)
        values = [
            str(seq),
            *(f"'{v}'" for v in texts),
            _blob(db_url, prev_hash),
            _blob(db_url, digest),
        ]
        statements.append(f"INSERT INTO audit_events VALUES ({', '.join(values)})")
    await raw_execute(db_url, statements)
    assert await damage_of(db_url, signing_key) == (1, Damage.ALTERED)


def _blob(url: str, value: bytes) -> str:
    return f"X'{value.hex()}'" if url.startswith("sqlite") else f"'\\x{value.hex()}'::bytea"
