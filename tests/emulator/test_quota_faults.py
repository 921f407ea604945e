"""Quota (both regimes, concurrency cap, batch charging) and seeded fault injection."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest

from connector.emulator.errors import GmailError
from connector.emulator.faults import FaultConfig, FaultInjector
from connector.emulator.quota import QuotaConfig, QuotaRegime, QuotaTracker, RateLimitStyle
from connector.emulator.server import Emulator
from tests.emulator.conftest import ALICE, BOB, Api


def raw() -> str:
    return base64.urlsafe_b64encode(b"To: bob@example.com\r\nSubject: q\r\n\r\nx").decode()


async def test_legacy_quota_429_envelope(emu: Emulator, api: Api) -> None:
    """Exceeding 250 units/s with messages.get (5 units) yields 429 rateLimitExceeded."""
    emu.set_quota(QuotaConfig(regime=QuotaRegime.LEGACY, window_seconds=60))
    _, listing = await api.get("messages", params={"maxResults": "1"})  # 5 units
    mid = listing["messages"][0]["id"]
    statuses = [
        (await api.get(f"messages/{mid}", params={"format": "minimal"}))[0] for _ in range(50)
    ]
    assert statuses.count(200) == 49
    assert statuses[-1] == 429
    _, body = await api.get("profile")
    assert body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert emu.stats.rate_limited == 2
    assert emu.stats.units_charged == 250


async def test_per_minute_quota_403_style_and_per_user(
    emu: Emulator, api: Api, bob_api: Api
) -> None:
    """403 userRateLimitExceeded style; sends cost 100 units; other users are unaffected."""
    emu.set_quota(
        QuotaConfig(
            regime=QuotaRegime.PER_MINUTE, units_per_window=250, style=RateLimitStyle.HTTP_403
        )
    )
    assert (await api.post("messages/send", json={"raw": raw()}))[0] == 200
    assert (await api.post("messages/send", json={"raw": raw()}))[0] == 200
    status, body = await api.post("messages/send", json={"raw": raw()})
    assert status == 403
    assert body["error"]["errors"][0]["reason"] == "userRateLimitExceeded"
    assert body["error"]["errors"][0]["domain"] == "usageLimits"
    assert (await bob_api.get("profile"))[0] == 200


def test_quota_window_slides() -> None:
    """Units leave the moving window after window_seconds."""
    tracker = QuotaTracker(QuotaConfig(units_per_window=10, window_seconds=1.0))
    tracker.charge("u", "messages.get", now=0.0)
    tracker.charge("u", "messages.get", now=0.5)
    with pytest.raises(GmailError):
        tracker.charge("u", "messages.get", now=0.9)
    assert tracker.charge("u", "messages.get", now=1.01) == 5


def test_method_units_configurable() -> None:
    """The per-method unit table can be overridden; per_minute charges more for reads."""
    assert QuotaConfig(regime=QuotaRegime.PER_MINUTE).units("messages.get") == 20
    assert QuotaConfig(method_units={"messages.get": 7}).units("messages.get") == 7
    assert QuotaConfig().units("messages.send") == 100


async def test_batch_parts_charged_separately(emu: Emulator, api: Api) -> None:
    """Each batch part is charged like a lone call, and overflowing parts get 429."""
    emu.set_quota(QuotaConfig(units_per_window=3, window_seconds=60))
    boundary = "bb"
    parts = (
        "".join(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{i}>\r\n\r\n"
            "GET /gmail/v1/users/me/profile HTTP/1.1\r\n\r\n"
            for i in range(5)
        )
        + f"--{boundary}--\r\n"
    )
    headers = {
        "Authorization": f"Bearer {api.token}",
        "Content-Type": f"multipart/mixed; boundary={boundary}",
    }
    async with api.session.post(emu.batch_uri, data=parts, headers=headers) as resp:
        text = await resp.text()
    assert text.count("HTTP/1.1 200 OK") == 3
    assert text.count("HTTP/1.1 429") == 2
    assert emu.stats.requests["getProfile"] == 5


async def test_concurrency_cap(emu: Emulator, api: Api) -> None:
    """More in-flight requests than the per-user cap get 429 'Too many concurrent requests'."""
    emu.set_quota(QuotaConfig(units_per_window=10**9, max_concurrent_per_user=2))
    emu.set_faults(FaultConfig(latency_ms=150))
    results = await asyncio.gather(*(api.get("profile") for _ in range(5)))
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 200, 429, 429, 429]
    bodies = [b for s, b in results if s == 429]
    assert bodies[0]["error"]["message"] == "Too many concurrent requests for user."


def test_fault_decisions_deterministic() -> None:
    """The same seed gives the same fault schedule; another seed differs."""

    def schedule(seed: str) -> list[str]:
        inj = FaultInjector(FaultConfig(seed=seed, error_rate=0.3, drop_rate=0.1))
        return [inj.decide("messages.get").kind.value for _ in range(200)]

    assert schedule("a") == schedule("a")
    assert schedule("a") != schedule("b")
    kinds = schedule("a")
    assert 30 < kinds.count("error") < 90
    assert 5 < kinds.count("drop") < 40


def test_fault_config_validation() -> None:
    """Out-of-range rates and statuses are refused."""
    with pytest.raises(ValueError):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(error_statuses=(404,))


async def test_error_faults_return_backend_envelopes(emu: Emulator, api: Api) -> None:
    """error_rate=1 makes every call 500/503 with Gmail's backendError envelope."""
    emu.set_faults(FaultConfig(seed=1, error_rate=1.0))
    seen = set()
    for _ in range(10):
        status, body = await api.get("profile")
        seen.add(status)
        assert body["error"]["errors"][0]["reason"] == "backendError"
    assert seen == {500, 503}
    emu.set_faults(None)
    assert (await api.get("profile"))[0] == 200


async def test_drop_closes_connection(emu: Emulator, api: Api) -> None:
    """drop_rate=1 closes the connection without any HTTP response."""
    emu.set_faults(FaultConfig(drop_rate=1.0))
    with pytest.raises(aiohttp.ClientError):
        await api.get("profile")


async def test_after_commit_fault_send_exists(emu: Emulator, api: Api) -> None:
    """after_commit faults: the client sees 5xx (or a drop) but the message was sent."""
    before = emu.count_messages(ALICE, "SENT")
    emu.set_faults(FaultConfig(after_commit_rate=1.0, methods=frozenset({"messages.send"})))
    status, body = await api.post("messages/send", json={"raw": raw()})
    assert status in (500, 503)
    assert body["error"]["code"] == status
    assert emu.count_messages(ALICE, "SENT") == before + 1
    assert (await api.get("profile"))[0] == 200  # other methods unaffected
    emu.set_faults(FaultConfig(after_commit_rate=1.0, after_commit_drop=True))
    with pytest.raises(aiohttp.ClientError):
        await api.post("messages/send", json={"raw": raw()})
    assert emu.count_messages(ALICE, "SENT") == before + 2
    assert emu.count_messages(BOB, "INBOX") >= 2
