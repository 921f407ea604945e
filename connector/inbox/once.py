"""Exactly once under client retries: the Idempotency-Key machinery shared by send, draft create
and draft send.

A request with a key claims a shared record (`SendKeys`) before the work, completes it with the
answer after, and releases it when the work failed. A retry finds the record and is answered
with the first answer through the gate (decided and audited as a replay, Gmail not called); a
retry while the first still runs in this process waits for it, elsewhere it is told 409; the same
key with another request (another fingerprint, including another operation) is refused 422.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from connector.errors import IdempotencyConflictError, IdempotencyMismatchError
from connector.inbox.send_keys import ClaimOutcome, SendKey, SendKeys
from connector.policy import AccessContext
from connector.policy.plans import Plan
from connector.ports import GmailJson

if TYPE_CHECKING:
    from connector.policy.gate import Gate

log = structlog.get_logger(__name__)

Replay = Callable[[str, GmailJson], Plan[GmailJson]]  # (account, first answer) -> the replay


@dataclass(frozen=True, slots=True)
class Once:
    """The answer to a request; `replayed` when it is the answer of an earlier request."""

    result: GmailJson
    replayed: bool = False


def fingerprint(operation: str, request: object) -> str:
    """SHA-256 over the operation and what it asked for (JSON-able): a key reused for another
    request, or for another operation, is told apart."""
    text = json.dumps([operation, request], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class _InFlight:
    """Requests running in this process per (caller, account, key, fingerprint): a concurrent
    retry of the same request waits for the first instead of being told 409 by the record it
    would find `pending`. Another request under the same key never joins: it meets the record."""

    running: dict[tuple[SendKey, str], asyncio.Future[GmailJson]] = field(default_factory=dict)

    def join(self, key: tuple[SendKey, str]) -> tuple[asyncio.Future[GmailJson], bool]:
        found = self.running.get(key)
        if found is not None:
            return found, False
        future: asyncio.Future[GmailJson] = asyncio.get_running_loop().create_future()
        self.running[key] = future
        return future, True


class ExactlyOnce:
    """Runs work at most once per Idempotency-Key."""

    def __init__(self, gate: Gate, keys: SendKeys) -> None:
        self._gate = gate
        self._keys = keys
        self._in_flight = _InFlight()

    async def run(
        self,
        ctx: AccessContext,
        account_id: str,
        work: Callable[[], Awaitable[GmailJson]],
        *,
        idempotency_key: str | None,
        request_fingerprint: str,
        replay: Replay,
    ) -> Once:
        if idempotency_key is None:
            return Once(await work())
        key = SendKey(ctx.actor.id, account_id, idempotency_key)
        running = (key, request_fingerprint)
        future, mine = self._in_flight.join(running)
        if not mine:
            # The retry is an access attempt of its own: decided and audited by the gate.
            first = await asyncio.shield(future)
            return Once(await self._gate.run(ctx, replay(account_id, first)), replayed=True)
        try:
            once = await self._claimed(ctx, key, request_fingerprint, work, replay)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; waiting retries re-raise it
            raise
        else:
            future.set_result(once.result)
        finally:
            del self._in_flight.running[running]
        return once

    async def _claimed(
        self,
        ctx: AccessContext,
        key: SendKey,
        request_fingerprint: str,
        work: Callable[[], Awaitable[GmailJson]],
        replay: Replay,
    ) -> Once:
        claim = await self._keys.claim(key, request_fingerprint)
        if claim.outcome is ClaimOutcome.SENT:
            answer = await self._gate.run(ctx, replay(key.account_id, claim.result or {}))
            return Once(answer, replayed=True)
        if claim.outcome is ClaimOutcome.IN_PROGRESS:
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is still in progress; retry shortly"
            )
        if claim.outcome is ClaimOutcome.MISMATCH:
            raise IdempotencyMismatchError(
                "this Idempotency-Key was already used for a different request; use a new key"
            )
        try:
            result = await work()
        except BaseException:
            # nothing was done (or the outcome is unknown and said so): a retry may try again
            with contextlib.suppress(Exception):
                await self._keys.release(key)
            raise
        try:
            await self._keys.complete(key, result)
        except Exception as exc:  # the work is done: answer with it; the record goes stale
            log.warning("send_key_not_completed", error_type=type(exc).__name__)
        return Once(result)
