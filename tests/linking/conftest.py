"""Fixtures: the emulator (OAuth consent page and token endpoint) on loopback, one aiohttp
session, and a real in-memory audit log whose events the tests assert exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from audit.memory import MemoryAuditLog
from audit.vocab import Action
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
FAST = (0.0, 0.0)  # retry delays for tests: bounded attempts without waiting


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator with two seeded users; the consent page is shown (no auto-approve)."""
    config = EmulatorConfig(seed="linking", users=2, messages_per_user=2, auto_approve=False)
    async with run_emulator(config) as e:
        yield e


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session, closed after the test."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def audit_log() -> MemoryAuditLog:
    """A real (chained, verifiable) audit log in memory."""
    return MemoryAuditLog()


def actions(log: MemoryAuditLog) -> list[Action]:
    return [e.action for e in log.events]


def refresh_calls(emu: Emulator) -> int:
    """Token-endpoint calls that minted an access token (the emulator keeps every one)."""
    return len(emu.tokens.access_tokens)
