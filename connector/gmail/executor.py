"""Runs `ApiCall`s: bearer token, quota budget, retries with backoff, one refresh on 401, batches.

Retry rules: rate limits (429, 403 rate reasons) are refused before any work, so every call may
retry them; 5xx and dropped connections are retried only for idempotent calls, because for a
send they leave the outcome unknown (see `connector.gmail.sending`). Gmail's mail-sending limit
is the exception: it lasts hours, so it pauses sending for that account until the time Gmail
named, and every send until then is refused here without a request (`SendingPausedError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from connector.clock import Clock, system_clock
from connector.gmail.batch import MAX_BATCH_PARTS, BatchFormatError, decode_batch, encode_batch
from connector.gmail.calls import SENDING, ApiCall
from connector.gmail.errors import (
    ApiError,
    AuthError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    SendingPausedError,
    ServerError,
    classify,
    is_retryable,
)
from connector.gmail.quota import QuotaBudget
from connector.gmail.retry import RetryPolicy
from connector.gmail.transport import HttpAnswer, HttpCall, Transport
from connector.logs import get_logger
from connector.ports import AccessToken, TokenSource

log = get_logger(__name__)
Sleep = Callable[[float], Awaitable[None]]
# A batch part's outcome: the decoded result, or the API error that part ended with.
PartResult = Any


@dataclass(eq=False)
class Executor:
    transport: Transport
    tokens: TokenSource
    budget: QuotaBudget
    retry: RetryPolicy
    _: KW_ONLY
    batch_uri: str
    batch_size: int = MAX_BATCH_PARTS
    sleep: Sleep = asyncio.sleep
    clock: Clock = system_clock
    _sending_paused: dict[str, SendingPausedError] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_PARTS:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_PARTS}")

    # -- the mail-sending limit ----------------------------------------------------------
    def _paused(self, account_id: str, error: SendingPausedError) -> SendingPausedError:
        """Remember the pause; `retry_after` becomes the whole seconds left until it ends."""
        left = (error.until - self.clock()).total_seconds()
        error.retry_after = float(max(1, int(left + 0.999)))
        self._sending_paused[account_id] = error
        log.info("gmail_sending_paused", seconds=error.retry_after)
        return error

    def sending_paused_until(self, account_id: str) -> SendingPausedError | None:
        """The pause in force for `account_id`'s sends, if any (an expired one is forgotten)."""
        paused = self._sending_paused.get(account_id)
        if paused is not None and paused.until <= self.clock():
            del self._sending_paused[account_id]
            return None
        return paused

    def _check_sending(self, account_id: str, call: ApiCall) -> None:
        paused = self.sending_paused_until(account_id) if call.method in SENDING else None
        if paused is not None:
            raise self._paused(account_id, SendingPausedError(
                paused.message, until=paused.until, status=429, reason=paused.reason,
                grpc_status=paused.grpc_status, domain=paused.domain,
            ))  # fmt: skip

    # -- tokens --------------------------------------------------------------------------
    async def _refresh(self, account_id: str, rejected: AccessToken) -> AccessToken:
        """After a 401: reuse a token someone else already refreshed, else force one refresh."""
        current = await self.tokens.access_token(account_id)
        if current.token != rejected.token:
            return current
        log.info("gmail_token_rejected_refreshing")
        return await self.tokens.access_token(account_id, force_refresh=True)

    async def _exchange(
        self, account_id: str, units: int, http: HttpCall, token: AccessToken
    ) -> HttpAnswer:
        headers = {**http.headers, "authorization": f"Bearer {token.token}"}
        async with self.budget.spend(account_id, units):
            return await self.transport.send(HttpCall(http.verb, http.uri, headers, http.body))

    async def _back_off(self, account_id: str, attempt: int, error: Exception) -> None:
        retry_after = error.retry_after if isinstance(error, ApiError) else None
        delay = self.retry.delay(attempt, retry_after)
        if isinstance(error, RateLimitedError):
            # Every concurrent call for this user would hit the same wall: hold them all.
            self.budget.pause(account_id, delay)
        log.info(
            "gmail_retry",
            attempt=attempt,
            error=type(error).__name__,
            reason=getattr(error, "reason", None),
            delay=round(delay, 3),
        )
        await self.sleep(delay)

    # -- single calls --------------------------------------------------------------------
    async def call(
        self, account_id: str, call: ApiCall, *, gone_after_retry_ok: bool = False
    ) -> Any:
        """Run one call with the retry rules above; returns the decoded JSON.

        `gone_after_retry_ok`: for deletes, a 404 on a retry means an earlier attempt whose
        answer was lost already did the work.
        """
        self._check_sending(account_id, call)
        units = self.budget.policy.units(call.method)
        token = await self.tokens.access_token(account_id)
        refreshed = False
        attempt = 1
        while True:
            try:
                answer = await self._exchange(account_id, units, call.http, token)
            except NetworkError as exc:
                if (call.idempotent or not exc.request_sent) and self.retry.should_retry(attempt):
                    await self._back_off(account_id, attempt, exc)
                    attempt += 1
                    token = await self.tokens.access_token(account_id)
                    continue
                raise
            if answer.status < 300:
                return call.decode(answer.status, answer.body)
            error = classify(answer.status, answer.body, answer.headers.get("retry-after"))
            if isinstance(error, SendingPausedError):
                raise self._paused(account_id, error)  # hours away: the caller reschedules
            if gone_after_retry_ok and attempt > 1 and isinstance(error, NotFoundError):
                return {}
            if isinstance(error, AuthError) and not refreshed:
                refreshed = True
                token = await self._refresh(account_id, token)
                continue
            retryable = isinstance(error, RateLimitedError) or (
                call.idempotent and isinstance(error, ServerError)
            )
            if (error.retry_after or 0.0) > self.retry.max_retry_after:
                retryable = False  # e.g. the daily sending limit: the caller must reschedule
            if retryable and self.retry.should_retry(attempt):
                await self._back_off(account_id, attempt, error)
                attempt += 1
                token = await self.tokens.access_token(account_id)
                continue
            raise error

    # -- batches -------------------------------------------------------------------------
    def _chunk_size(self, calls: Sequence[ApiCall]) -> int:
        cap = self.budget.max_batch_units()
        if cap is None or not calls:
            return self.batch_size
        heaviest = max(self.budget.policy.units(c.method) for c in calls)
        return max(1, min(self.batch_size, cap // heaviest))

    async def batch(self, account_id: str, calls: Sequence[ApiCall]) -> list[PartResult]:
        """Run idempotent calls in batches; per call, the result or the `ApiError` it ended with.

        Chunks run concurrently; the quota budget and the per-user concurrency cap pace them.
        """
        if any(not c.idempotent for c in calls):
            raise ValueError("only idempotent calls may be batched")
        results: list[PartResult] = [None] * len(calls)
        size = self._chunk_size(calls)
        chunks = [list(range(i, min(i + size, len(calls)))) for i in range(0, len(calls), size)]
        await asyncio.gather(*(self._run_chunk(account_id, calls, c, results) for c in chunks))
        return results

    async def _run_chunk(
        self,
        account_id: str,
        calls: Sequence[ApiCall],
        pending: list[int],
        results: list[PartResult],
    ) -> None:
        token = await self.tokens.access_token(account_id)
        refreshed = False
        attempt = 1
        while pending:
            if len(pending) == 1:  # a batch of one costs more than the call itself
                index = pending[0]
                try:
                    results[index] = await self.call(account_id, calls[index])
                except ApiError as exc:
                    results[index] = exc
                return
            failures = await self._round(account_id, calls, pending, results, token)
            if not failures:
                return
            if not refreshed and any(isinstance(e, AuthError) for e in failures.values()):
                refreshed = True
                token = await self._refresh(account_id, token)
                pending = list(failures)
                continue
            worst = next(iter(failures.values()))
            if isinstance(worst, AuthError) or not self.retry.should_retry(attempt):
                if isinstance(worst, NetworkError):
                    raise worst
                for index, error in failures.items():
                    results[index] = error
                return
            rate_limited = [e for e in failures.values() if isinstance(e, RateLimitedError)]
            await self._back_off(account_id, attempt, rate_limited[0] if rate_limited else worst)
            attempt += 1
            token = await self.tokens.access_token(account_id)
            pending = list(failures)

    async def _round(
        self,
        account_id: str,
        calls: Sequence[ApiCall],
        pending: list[int],
        results: list[PartResult],
        token: AccessToken,
    ) -> dict[int, Exception]:
        """One batch exchange; fills final results, returns the parts worth another round."""
        units = sum(self.budget.policy.units(calls[i].method) for i in pending)
        request = encode_batch([calls[i].http for i in pending])
        http = HttpCall(
            "POST", self.batch_uri, {"content-type": request.content_type}, request.body
        )
        try:
            answer = await self._exchange(account_id, units, http, token)
        except NetworkError as exc:
            return dict.fromkeys(pending, exc)
        if answer.status >= 300:
            outer = classify(answer.status, answer.body, answer.headers.get("retry-after"))
            if isinstance(outer, AuthError) or is_retryable(outer):
                return dict.fromkeys(pending, outer)
            raise outer
        try:
            parts = decode_batch(answer.headers.get("content-type", ""), answer.body, len(pending))
        except BatchFormatError as exc:
            return dict.fromkeys(pending, ServerError(str(exc), status=502, reason=None))
        failures: dict[int, Exception] = {}
        for position, index in enumerate(pending):
            part = parts[position]
            if part is None:
                failures[index] = ServerError("batch answer lacks a part", status=502, reason=None)
            elif part.status < 300:
                results[index] = calls[index].decode(part.status, part.body)
            else:
                error = classify(part.status, part.body, part.headers.get("retry-after"))
                if isinstance(error, AuthError) or is_retryable(error):
                    failures[index] = error
                else:
                    results[index] = error
        return failures
