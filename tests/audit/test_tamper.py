"""Damage made behind the engine's back is found, with the first bad seq and its kind."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Damage, open_audit_log
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


async def test_altered_body(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Editing an event's body is reported as altered at that seq."""
    await build(db_url, signing_key)
    await raw_execute(
        db_url, ["UPDATE audit_events SET body = replace(body, '\"u1\"', '\"u2\"') WHERE seq = 8"]
    )
    assert await damage_of(db_url, signing_key) == (8, Damage.ALTERED)


async def test_altered_index_column(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Editing only a query column (to hide an event) is reported as altered."""
    await build(db_url, signing_key)
    await raw_execute(db_url, ["UPDATE audit_events SET account_id = 'other' WHERE seq = 12"])
    assert await damage_of(db_url, signing_key) == (12, Damage.ALTERED)


async def test_deleted_event(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Deleting an event is reported as deleted at the missing seq."""
    await build(db_url, signing_key)
    await raw_execute(db_url, ["DELETE FROM audit_events WHERE seq = 5"])
    assert await damage_of(db_url, signing_key) == (5, Damage.DELETED)


async def test_deleted_and_renumbered(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Deleting an event and closing the gap is still reported as deleted."""
    await build(db_url, signing_key)
    await raw_execute(
        db_url,
        [
            "DELETE FROM audit_events WHERE seq = 5",
            "UPDATE audit_events SET seq = seq + 1000 WHERE seq > 5",
            "UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000",
        ],
    )
    assert await damage_of(db_url, signing_key) == (5, Damage.DELETED)


async def test_inserted_event(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """A forged row slipped between two events is reported as inserted."""
    await build(db_url, signing_key)
    await raw_execute(
        db_url,
        [
            "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 7",
            "UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000",
            "INSERT INTO audit_events SELECT 7, time, account_id, actor_id, action, purpose,"
            " decision, body, prev_hash, hash FROM audit_events WHERE seq = 3",
        ],
    )
    assert await damage_of(db_url, signing_key) == (7, Damage.INSERTED)


async def test_reordered_events(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Swapping two adjacent events is reported as reordered."""
    await build(db_url, signing_key)
    await raw_execute(
        db_url,
        [
            "UPDATE audit_events SET seq = 1000 WHERE seq = 14",
            "UPDATE audit_events SET seq = 14 WHERE seq = 15",
            "UPDATE audit_events SET seq = 15 WHERE seq = 1000",
        ],
    )
    assert await damage_of(db_url, signing_key) == (14, Damage.REORDERED)


async def test_truncated_after_checkpoint(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """Cutting off the tail that a signed checkpoint covers is reported as truncated."""
    await build(db_url, signing_key)
    await raw_execute(db_url, ["DELETE FROM audit_events WHERE seq > 24"])
    assert await damage_of(db_url, signing_key) == (25, Damage.TRUNCATED)


async def test_forged_checkpoint(db_url: str, signing_key: Ed25519PrivateKey) -> None:
    """A checkpoint re-signed with another key, or edited, is reported as forged."""
    await build(db_url, signing_key)
    other = generate_key()
    forged = other.sign(b"anything").hex()
    await raw_execute(
        db_url, [f"UPDATE audit_checkpoints SET signature = '{forged}' WHERE seq = 20"]
    )
    assert await damage_of(db_url, signing_key) == (20, Damage.FORGED_CHECKPOINT)


async def test_rewritten_chain_caught_by_checkpoint(
    db_url: str, signing_key: Ed25519PrivateKey
) -> None:
    """Rewriting a whole stretch with recomputed hashes contradicts the signed checkpoint."""
    await build(db_url, signing_key)
    # Replace the chain with a self-consistent one built from different events.
    from audit.chain import Pending, link

    forged = link(0, bytes(32), [Pending.of(make_event(i + 100)) for i in range(N)])
    statements = ["DELETE FROM audit_events"]
    for item in forged:
        c = item.pending.columns
        values = [
            str(item.seq),
            *(
                f"'{v}'"
                for v in (
                    c.time,
                    c.account_id,
                    c.actor_id,
                    c.action,
                    c.purpose,
                    c.decision,
                    item.pending.body,
                )
            ),
            _blob(db_url, item.prev_hash),
            _blob(db_url, item.hash),
        ]
        statements.append(f"INSERT INTO audit_events VALUES ({', '.join(values)})")
    await raw_execute(db_url, statements)
    assert await damage_of(db_url, signing_key) == (1, Damage.ALTERED)


def _blob(url: str, value: bytes) -> str:
    return f"X'{value.hex()}'" if url.startswith("sqlite") else f"'\\x{value.hex()}'::bytea"
