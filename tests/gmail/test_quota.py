"""Quota budgeting: pacing under the unit limit, the concurrency cap, and 429 handling."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from connector.emulator.quota import QuotaConfig, RateLimitStyle
from connector.gmail import GmailClient, QuotaPolicy, QuotaRegime, RetryPolicy, errors
from connector.gmail.quota import QuotaBudget
from connector.ports import FETCH_MINIMAL, AccessToken
from tests.gmail.conftest import FAST_RETRY


def test_regime_tables():
    """Both regimes have their limits and cost tables; overrides win."""
    legacy = QuotaPolicy.for_regime(QuotaRegime.LEGACY)
    assert (legacy.units_per_window, legacy.window_seconds) == (250, 1.0)
    assert legacy.units("messages.get") == 5
    assert legacy.units("messages.send") == 100
    newer = QuotaPolicy.for_regime("per_minute", overrides={"history.list": 3})
    assert (newer.units_per_window, newer.window_seconds) == (6000, 60.0)
    assert newer.units("messages.get") == 20
    assert newer.units("threads.get") == 40
    assert newer.units("history.list") == 3
    with pytest.raises(ValueError, match="per_hour"):
        QuotaPolicy.for_regime("per_hour")


def test_worker_processes_share_the_per_user_limits():
    """`serve --workers N`: each process paces to 1/N, never below the costliest call."""
    two = QuotaPolicy.for_regime(QuotaRegime.LEGACY, max_concurrency_per_user=10, shares=2)
    assert (two.units_per_window, two.max_concurrency_per_user) == (125, 5)
    four = QuotaPolicy.for_regime(QuotaRegime.LEGACY, max_concurrency_per_user=10, shares=4)
    assert four.units_per_window == 100  # 62 would make a 100-unit send impossible
    assert four.max_concurrency_per_user == 2
    minute = QuotaPolicy.for_regime("per_minute", max_concurrency_per_user=3, shares=8)
    assert (minute.units_per_window, minute.max_concurrency_per_user) == (750, 1)
    with pytest.raises(ValueError, match="shares"):
        QuotaPolicy.for_regime(QuotaRegime.LEGACY, shares=0)


async def test_budget_waits_for_the_window():
    """Units beyond the limit wait until a window has passed since the earlier answer."""
    budget = QuotaBudget(QuotaPolicy(units_per_window=10, window_seconds=0.2))
    loop = asyncio.get_running_loop()
    first = await budget.acquire("u", 5)
    second = await budget.acquire("u", 5)
    start = loop.time()
    budget.release("u", first)
    budget.release("u", second)
    third = await budget.acquire("u", 5)
    assert loop.time() - start >= 0.19
    assert budget.used("u") == 5
    budget.release("u", third)
    assert budget.used("other") == 0


async def test_in_flight_units_block_until_answered():
    """A charge still in flight never expires: the next caller waits for its answer first."""
    budget = QuotaBudget(QuotaPolicy(units_per_window=5, window_seconds=0.05))
    held = await budget.acquire("u", 5)
    waiter = asyncio.create_task(budget.acquire("u", 5))
    await asyncio.sleep(0.15)
    assert not waiter.done()
    budget.release("u", held)
    charge = await asyncio.wait_for(waiter, 1)
    assert charge.units == 5


async def test_oversized_call_goes_alone_and_pause_holds():
    """A call costing more than the window goes when the window is empty; pause delays all."""
    budget = QuotaBudget(QuotaPolicy(units_per_window=10, window_seconds=0.1))
    big = await asyncio.wait_for(budget.acquire("u", 100), 1)
    budget.release("u", big)
    loop = asyncio.get_running_loop()
    budget.pause("v", 0.1)
    start = loop.time()
    await budget.acquire("v", 1)
    assert loop.time() - start >= 0.09


async def test_concurrency_cap():
    """No more than max_concurrency_per_user exchanges run at once for one user."""
    budget = QuotaBudget(QuotaPolicy.unmetered(max_concurrency_per_user=2))
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        async with budget.spend("u", 1):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(work() for _ in range(10)))
    assert peak == 2


LIMIT = QuotaConfig(units_per_window=100, window_seconds=0.5, max_concurrent_per_user=4)


async def test_paced_bulk_work_gets_no_rate_limits(emu, user, make_client):
    """Bulk gets and a burst of single calls stay under the emulator's quota: zero 429s."""
    client = make_client(
        quota=QuotaPolicy(units_per_window=100, window_seconds=0.5, max_concurrency_per_user=4)
    )
    ids = await client.list_all_message_ids(user)
    emu.set_quota(LIMIT)
    emu.stats.reset()
    results = await client.get_messages(user, ids, FETCH_MINIMAL)
    singles = await asyncio.gather(*(client.get_message(user, i, FETCH_MINIMAL) for i in ids[:20]))
    assert [r["id"] for r in results] == ids
    assert len(singles) == 20
    assert emu.stats.rate_limited == 0
    assert emu.stats.units_charged == 5 * (len(ids) + 20)


@pytest.mark.parametrize("style", [RateLimitStyle.HTTP_429, RateLimitStyle.HTTP_403])
async def test_unpaced_client_recovers_from_rate_limits(emu, user, make_client, style):
    """Without a unit budget the client meets 429/403 rate limits, backs off and completes."""
    client = make_client(
        quota=None, retry=RetryPolicy(max_attempts=12, base_delay=0.05, max_delay=0.4)
    )
    ids = await client.list_all_message_ids(user)
    emu.set_quota(QuotaConfig(units_per_window=60, window_seconds=0.2, style=style))
    emu.stats.reset()
    results = await asyncio.gather(*(client.get_message(user, i, FETCH_MINIMAL) for i in ids))
    assert [r["id"] for r in results] == ids
    assert emu.stats.rate_limited > 0


class StaticTokens:
    async def access_token(self, account_id, *, force_refresh=False):
        return AccessToken("t", None, frozenset())


@pytest.fixture
async def rate_limited_server():
    """A fake Gmail whose first getProfile answers 429 with a chosen Retry-After."""
    state = {"retry_after": "0.3", "hits": []}
    loop = asyncio.get_running_loop()

    async def profile(_request: web.Request) -> web.Response:
        state["hits"].append(loop.time())
        if len(state["hits"]) == 1:
            envelope = {
                "error": {
                    "code": 429,
                    "message": "slow down",
                    "errors": [{"reason": "rateLimitExceeded", "domain": "global", "message": "x"}],
                }
            }
            return web.json_response(
                envelope, status=429, headers={"Retry-After": state["retry_after"]}
            )
        return web.json_response({"emailAddress": "a@example.com", "historyId": "1"})

    app = web.Application()
    app.router.add_get("/gmail/v1/users/me/profile", profile)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state["endpoint"] = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    yield state
    await runner.cleanup()


async def test_retry_after_is_honoured(rate_limited_server, session):
    """A 429 with Retry-After is retried no sooner than the server asked."""
    client = GmailClient(rate_limited_server["endpoint"], StaticTokens(), session, retry=FAST_RETRY)
    profile = await client.get_profile("a")
    hits = rate_limited_server["hits"]
    assert profile["historyId"] == "1"
    assert len(hits) == 2
    assert hits[1] - hits[0] >= 0.29


async def test_retry_after_beyond_cap_is_raised(rate_limited_server, session):
    """A Retry-After longer than the policy's cap (e.g. sending limit) raises at once."""
    rate_limited_server["retry_after"] = "3600"
    client = GmailClient(rate_limited_server["endpoint"], StaticTokens(), session, retry=FAST_RETRY)
    with pytest.raises(errors.RateLimitedError) as limited:
        await client.get_profile("a")
    assert limited.value.retry_after == 3600.0
    assert len(rate_limited_server["hits"]) == 1
