"""An in-memory Idempotency-Key store: the same rules as `connector.inbox.send_keys.SqlSendKeys`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from connector.clock import Clock, system_clock
from connector.inbox import send_keys
from connector.ports import GmailJson


class MemorySendKeys:
    """The rules of `SqlSendKeys` in one process's memory (tests and benchmarks)."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._records: dict[send_keys.SendKey, send_keys.KeyRecord] = {}

    async def claim(self, key: send_keys.SendKey, fingerprint: str) -> send_keys.Claim:
        now = self._clock()
        found = self._records.get(key)
        if found is not None:
            verdict = found.judge(fingerprint, now)
            if verdict is not None:
                return verdict
        self._records[key] = send_keys.KeyRecord(fingerprint, send_keys.KeyState.PENDING, now)
        self._expire(now)
        return send_keys.Claim(send_keys.ClaimOutcome.CLAIMED)

    def _expire(self, now: datetime) -> None:
        cutoff = now - send_keys.RECORD_TTL  # a record this old or older has expired
        for old in [k for k, r in self._records.items() if r.created_at <= cutoff]:
            del self._records[old]

    async def complete(self, key: send_keys.SendKey, result: GmailJson) -> None:
        found = self._records.get(key)
        if found is not None:
            self._records[key] = replace(
                found, state=send_keys.KeyState.SENT, result=send_keys.ids_only(result)
            )

    async def release(self, key: send_keys.SendKey) -> None:
        found = self._records.get(key)
        if found is not None and found.state == send_keys.KeyState.PENDING:
            del self._records[key]
