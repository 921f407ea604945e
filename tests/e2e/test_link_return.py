"""The OAuth callback ends in the platform, not on raw JSON: a redirect to an allow-listed return
URL carrying the outcome, or a plain page when none is set; the disclosure page names the app
and links its privacy policy, as Google's verification checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import pytest

from connector.demo import Demo, running_demo

RETURN = "https://platform.example/settings/gmail"
BRANDING = {
    "app_name": "Acme CRM",
    "privacy_policy_url": "https://acme.example/privacy",
    "link_return_urls": (RETURN, "https://platform.example/onboarding"),
}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """The demo stack with an app name, a privacy policy and return URLs configured."""
    async with running_demo(tmp_path / "demo", 0, overrides=BRANDING) as running:
        yield running


async def _to_callback(demo: Demo, browser: aiohttp.ClientSession, body: object) -> str:
    """Start a link, open the page, Continue, pass Google (emulated): the callback URL."""
    status, started = await demo.call("POST", "/v1/accounts/link", "alice", json=body)
    assert status == 201, started
    async with browser.get(started["disclosure_url"]) as page:
        assert page.status == 200
    ticket = started["disclosure_url"].split("ticket=", 1)[1]
    form = {"ticket": ticket, "disclosure_accepted": "yes"}
    async with browser.post(f"{demo.base}/v1/link/start", data=form, allow_redirects=False) as cont:
        google = cont.headers["Location"]
    async with browser.get(google, allow_redirects=False) as consent:
        callback: str = consent.headers["Location"]
    assert urlsplit(callback).path == "/v1/oauth/callback"
    return callback


def _browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_callback_redirects_to_the_return_url_with_the_outcome(demo: Demo) -> None:
    """Linked: 303 to the chosen allow-listed URL with link=linked and the account id."""
    async with _browser() as browser:
        callback = await _to_callback(demo, browser, {"return_url": RETURN})
        async with browser.get(callback, allow_redirects=False) as done:
            assert done.status == 303
            location = urlsplit(done.headers["Location"])
    assert urlunsplit((*location[:3], "", "")) == RETURN
    outcome = parse_qs(location.query)
    assert outcome["link"] == ["linked"]
    assert outcome["account_id"] == [demo.account_id]  # a relink of alice's mailbox


async def test_failed_link_redirects_with_the_reason(demo: Demo) -> None:
    """Declined at Google: 303 to the return URL with link=failed and the reason code."""
    async with _browser() as browser:
        callback = await _to_callback(demo, browser, {})  # the first allow-listed URL
        parts = urlsplit(callback)
        state = parse_qs(parts.query)["state"][0]
        declined = urlunsplit((*parts[:3], f"state={state}&error=access_denied", ""))
        async with browser.get(declined, allow_redirects=False) as done:
            assert done.status == 303
            location = urlsplit(done.headers["Location"])
    assert urlunsplit((*location[:3], "", "")) == RETURN
    assert parse_qs(location.query) == {"link": ["failed"], "reason": ["access_denied"]}


async def test_return_url_off_the_allow_list_is_refused(demo: Demo) -> None:
    """A return URL the deployment did not allow is refused before any ticket is issued."""
    status, body = await demo.call(
        "POST", "/v1/accounts/link", "alice", json={"return_url": "https://evil.example/x"}
    )
    assert status == 422, body
    assert "CONNECTOR_LINK_RETURN_URLS" in body["detail"]


async def test_disclosure_names_the_app_and_links_its_privacy_policy(demo: Demo) -> None:
    """The page shows the configured app name and a link to its privacy policy."""
    status, started = await demo.call("POST", "/v1/accounts/link", "alice")
    assert status == 201
    async with _browser() as browser, browser.get(started["disclosure_url"]) as page:
        html = await page.text()
    assert "Link your Gmail account to Acme CRM" in html
    assert '<a href="https://acme.example/privacy">' in html
    assert "Limited Use" in html


async def test_without_return_url_the_callback_shows_a_plain_page(tmp_path: Path) -> None:
    """No return URL configured: a short HTML page says what happened, never raw JSON."""
    async with running_demo(tmp_path / "demo", 0) as plain, _browser() as browser:
        callback = await _to_callback(plain, browser, None)
        async with browser.get(callback) as done:
            assert done.status == 200
            assert done.content_type == "text/html"
            page = await done.text()
        assert "Your Gmail account is linked" in page
        parts = urlsplit(callback)
        state = parse_qs(parts.query)["state"][0]
        replay = urlunsplit((*parts[:3], f"state={state}&code=x", ""))
        async with browser.get(replay) as again:  # the state is used up: a plain failure page
            assert again.status == 400
            assert again.content_type == "text/html"
            assert "unknown_state" in await again.text()
