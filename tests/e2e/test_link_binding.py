"""A link flow belongs to the browser that opened its disclosure page (an HttpOnly, SameSite
cookie checked at Continue and at the callback): a forwarded disclosure link, or a forwarded
Google authorization URL, links nothing into the platform account that started the flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from connector.accounts.http_linking import BROWSER_COOKIE
from connector.demo import Demo, running_demo


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """The demo stack, alice linked once already through the real flow."""
    async with running_demo(tmp_path / "demo", 0) as running:
        yield running


def _browser() -> aiohttp.ClientSession:
    """A browser of its own: its own cookie jar (loopback hosts allowed)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _accounts(demo: Demo) -> int:
    status, body = await demo.call("GET", "/v1/accounts", "alice")
    assert status == 200
    return len(body["accounts"])


async def _start(demo: Demo) -> str:
    status, started = await demo.call("POST", "/v1/accounts/link", "alice")
    assert status == 201
    url: str = started["disclosure_url"]
    return url


async def test_disclosure_sets_a_short_lived_httponly_samesite_cookie(demo: Demo) -> None:
    """The disclosure page binds the flow with a cookie scripts cannot read, sent same-site only."""
    async with _browser() as browser, browser.get(await _start(demo)) as page:
        assert page.status == 200
        cookie = page.cookies[BROWSER_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"  # sent on Google's top-level redirect back, not cross-site
    assert 0 < int(cookie["max-age"]) <= 600
    assert cookie["path"] == "/v1/"


async def test_forwarded_disclosure_link_is_refused(demo: Demo) -> None:
    """Alice opens the page, forwards the URL to bob: bob's browser is refused, alice goes on."""
    before = await _accounts(demo)
    url = await _start(demo)
    async with _browser() as alice, _browser() as bob:
        async with alice.get(url) as page:
            assert page.status == 200
        async with bob.get(url) as forwarded:
            body = await forwarded.json(content_type=None)
            assert forwarded.status == 401, body
            assert body["type"].endswith("/unauthenticated")
            assert "another browser" in body["detail"]
        ticket = url.split("ticket=", 1)[1]
        form = {"ticket": ticket, "disclosure_accepted": "yes"}
        async with bob.post(f"{demo.base}/v1/link/start", data=form) as posted:
            assert posted.status == 401  # Continue from bob's browser is refused as well
        async with alice.post(f"{demo.base}/v1/link/start", data=form) as done:
            assert done.status == 200, await done.text()  # the owner's own browser still links
    assert await _accounts(demo) == before  # a relink of the same mailbox, no new account


async def test_forwarded_google_authorization_url_links_nothing(demo: Demo) -> None:
    """Alice presses Continue and forwards Google's URL: the callback in bob's browser fails."""
    before = await _accounts(demo)
    url = await _start(demo)
    ticket = url.split("ticket=", 1)[1]
    async with _browser() as alice, _browser() as bob:
        async with alice.get(url) as page:
            assert page.status == 200
        form = {"ticket": ticket, "disclosure_accepted": "yes"}
        async with alice.post(
            f"{demo.base}/v1/link/start", data=form, allow_redirects=False
        ) as cont:
            assert cont.status == 302
            google = cont.headers["Location"]
        async with bob.get(google) as callback:  # consent (emulated), then our callback
            assert urlsplit(str(callback.url)).path == "/v1/oauth/callback"
            page = await callback.text()
            assert callback.status == 400, page
            assert "browser_mismatch" in page
    assert await _accounts(demo) == before
