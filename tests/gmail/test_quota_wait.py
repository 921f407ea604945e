"""A request never queues for a mailbox's quota longer than `max_wait_seconds`: past the bound
it is refused (QuotaWaitExceededError, 429 with Retry-After) and leaves the queue untouched."""

from __future__ import annotations

import asyncio

import pytest

from connector.gmail import QuotaPolicy, errors
from connector.gmail.quota import QuotaBudget
from connector.settings import Settings
from connector.web.errors import to_problem
from connector.web.problems import ProblemType


async def test_unit_wait_past_the_bound_is_refused() -> None:
    """Units held in flight past the bound: the waiter is refused at the bound, not later."""
    budget = QuotaBudget(QuotaPolicy(units_per_window=5, window_seconds=1, max_wait_seconds=0.1))
    held = await budget.acquire("u", 5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(errors.QuotaWaitExceededError) as refused:
        async with budget.spend("u", 5):
            pytest.fail("the call must not run")
    assert 0.09 <= loop.time() - start < 0.5
    assert refused.value.retry_after >= 1
    assert budget.used("u") == 5  # the refused caller left no charge behind
    budget.release("u", held)


async def test_concurrency_wait_past_the_bound_is_refused() -> None:
    """All of a user's slots busy past the bound: the next call is refused, others go on."""
    budget = QuotaBudget(
        QuotaPolicy(units_per_window=None, max_concurrency_per_user=1, max_wait_seconds=0.05)
    )
    release = asyncio.Event()

    async def hold() -> None:
        async with budget.spend("u", 1):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(errors.QuotaWaitExceededError):
        async with budget.spend("u", 1):
            pass
    async with budget.spend("other", 1):  # another mailbox is not held up
        pass
    release.set()
    await holder
    async with budget.spend("u", 1):  # and the slot is usable again
        pass


async def test_waits_within_the_bound_still_succeed() -> None:
    """A wait shorter than the bound is paced, as before."""
    budget = QuotaBudget(QuotaPolicy(units_per_window=5, window_seconds=0.05, max_wait_seconds=2))
    first = await budget.acquire("u", 5)
    budget.release("u", first)
    async with budget.spend("u", 5):
        assert budget.used("u") == 5


def test_bound_comes_from_the_settings() -> None:
    """CONNECTOR_GMAIL_MAX_QUEUE_WAIT_SECONDS sets the bound; zero or less is refused."""
    assert Settings().gmail_max_queue_wait_seconds == 10
    env = {"CONNECTOR_GMAIL_MAX_QUEUE_WAIT_SECONDS": "2.5"}
    assert Settings.from_env(env).gmail_max_queue_wait_seconds == 2.5
    with pytest.raises(ValueError, match="GMAIL_MAX_QUEUE_WAIT_SECONDS"):
        Settings.from_env({"CONNECTOR_GMAIL_MAX_QUEUE_WAIT_SECONDS": "0"})
    policy = QuotaPolicy.for_regime("legacy", max_wait_seconds=2.5)
    assert policy.max_wait_seconds == 2.5


def test_refusal_is_429_with_retry_after() -> None:
    """The web layer answers the refusal as rate-limited, with the error's Retry-After."""
    problem = to_problem(errors.QuotaWaitExceededError(waited=10.0, retry_after=3))
    assert problem is not None
    assert problem.kind is ProblemType.RATE_LIMITED
    assert problem.status == 429
    assert problem.headers["Retry-After"] == "3"


async def test_no_caller_waits_past_the_bound_under_load() -> None:
    """A burst on one mailbox: every caller either runs or is refused within the bound."""
    bound = 0.2
    budget = QuotaBudget(
        QuotaPolicy(
            units_per_window=10,
            window_seconds=0.1,
            max_concurrency_per_user=2,
            max_wait_seconds=bound,
        )
    )
    loop = asyncio.get_running_loop()

    async def call() -> tuple[bool, float]:
        start = loop.time()
        try:
            async with budget.spend("u", 5):
                waited = loop.time() - start
                await asyncio.sleep(0.02)  # the HTTP exchange
                return True, waited
        except errors.QuotaWaitExceededError:
            return False, loop.time() - start

    results = await asyncio.gather(*(call() for _ in range(60)))
    assert any(ran for ran, _ in results)
    assert any(not ran for ran, _ in results)
    assert max(waited for _, waited in results) < bound + 0.05
