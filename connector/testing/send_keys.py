"""An in-memory Idempotency-Key store: the same rules as `connector.inbox.send_keys.SqlSendKeys`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from connector.clock import Clock, system_clock
from connector.inbox.send_keys import (
    RECORD_TTL,
    Claim,
    ClaimOutcome,
    KeyRecord,
    KeyState,
    SendKey,
    ids_only,
)
from connector.ports import GmailJson


class MemorySendKeys:
    """The rules of `SqlSendKeys` in one process's memory (tests and benchmarks)."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._records: dict[SendKey, KeyRecord] = {}

    async def claim(self, key: SendKey, fingerprint: str) -> Claim:
        now = self._clock()
        found = self._records.get(key)
        if found is not None:
            verdict = found.judge(fingerprint, now)
            if verdict is not None:
                return verdict
        self._records[key] = KeyRecord(fingerprint, KeyState.PENDING, now)
        self._expire(now)
        return Claim(ClaimOutcome.CLAIMED)

    def _expire(self, now: datetime) -> None:
        for old in [k for k, r in self._records.items() if now - r.created_at >= RECORD_TTL]:
            del self._records[old]

    async def complete(self, key: SendKey, result: GmailJson) -> None:
        found = self._records.get(key)
        if found is not None:
            self._records[key] = replace(found, state=KeyState.SENT, result=ids_only(result))

    async def release(self, key: SendKey) -> None:
        found = self._records.get(key)
        if found is not None and found.state == KeyState.PENDING:
            del self._records[key]
