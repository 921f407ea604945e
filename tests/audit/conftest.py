"""Fixtures for the audit tests: one log per engine (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import AuditLog, MemoryAuditLog, open_audit_log
from audit.signing import generate_key
from tests.audit.helpers import scratch_audit_url


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_log(
    request: pytest.FixtureRequest, tmp_path: Path, signing_key: Ed25519PrivateKey
) -> AsyncIterator[AuditLog | MemoryAuditLog]:
    """The same behavioural contract on every implementation of the audit log."""
    if request.param == "memory":
        memory = MemoryAuditLog(signing_key=signing_key, checkpoint_every=10)
        yield memory
        await memory.close()
        return
    async with scratch_audit_url(request.param, tmp_path) as url:
        log = await open_audit_log(url, signing_key=signing_key, checkpoint_every=10)
        try:
            yield log
        finally:
            await log.close()
