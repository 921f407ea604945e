"""Retry policy: bounded jittered backoff; retries of idempotent calls under injected faults."""

from __future__ import annotations

import random

import pytest

from connector.emulator.faults import FaultConfig
from connector.gmail import RetryPolicy, errors


def test_delays_are_jittered_and_capped():
    """Delays stay within base*2^n and max_delay; Retry-After wins but is capped."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, max_retry_after=10, rng=random.Random(1))
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert 0.0 <= policy.delay(attempt) <= ceiling
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=99.0) == 10.0
    delays = {policy.delay(5) for _ in range(20)}
    assert len(delays) > 10  # jitter spreads callers apart


def test_attempt_budget_and_validation():
    """should_retry allows max_attempts tries in total; nonsense settings are refused."""
    policy = RetryPolicy(max_attempts=3)
    assert [policy.should_retry(a) for a in (1, 2, 3)] == [True, True, False]
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


async def test_idempotent_calls_survive_errors_and_drops(emu, user, client):
    """5xx answers and dropped connections on reads are retried to success."""
    emu.set_faults(FaultConfig(seed=21, error_rate=0.4, drop_rate=0.2))
    for _ in range(5):
        profile = await client.get_profile(user)
        assert profile["emailAddress"] == user
    listing = await client.list_messages(user, max_results=10)
    assert len(listing["messages"]) == 10
    assert emu.faults.injected > 0


async def test_retries_are_bounded(emu, user, client):
    """A call that always fails raises ServerError after exactly max_attempts requests."""
    emu.set_faults(FaultConfig(seed=22, error_rate=1.0, methods=frozenset({"getProfile"})))
    before = emu.stats.requests["getProfile"]
    with pytest.raises(errors.ServerError) as failed:
        await client.get_profile(user)
    assert failed.value.status in (500, 503)
    assert emu.stats.requests["getProfile"] == before + 6  # FAST_RETRY.max_attempts


async def test_client_errors_are_not_retried(emu, user, client):
    """A 404 is final after one request."""
    before = emu.stats.requests["messages.get"]
    with pytest.raises(errors.NotFoundError):
        await client.get_message(user, "00000000deadbeef")
    assert emu.stats.requests["messages.get"] == before + 1
