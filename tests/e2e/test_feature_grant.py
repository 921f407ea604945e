"""Turning organize on after linking (incremental authorization, issue #14), through the demo's
real flow: refused with scope-not-granted and its grant, the disclosure page names gmail.modify
and why, Google's consent adds it, and the same call then works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connector.accounts.scopes import GMAIL_MODIFY
from connector.demo import Demo, running_demo
from connector.web.auth import Role, mint_token


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """The demo stack, alice linked once through the real flow (default features)."""
    async with running_demo(tmp_path / "demo", 0) as running:
        yield running


async def _continue(demo: Demo, disclosure_url: str) -> None:
    """Continue on the disclosure page, approve at (emulated) Google, land on the callback."""
    ticket = disclosure_url.split("ticket=", 1)[1]
    form = {"ticket": ticket, "disclosure_accepted": "yes"}
    async with demo.http.post(f"{demo.base}/v1/link/start", data=form,
                              allow_redirects=False) as cont:  # fmt: skip
        assert cont.status == 302, await cont.text()
        google = cont.headers["Location"]
    assert "gmail.modify" in google  # Google is asked for the new scope
    async with demo.http.get(google, allow_redirects=False) as consent:
        callback = consent.headers["Location"]
    async with demo.http.get(callback, allow_redirects=False) as done:
        assert done.status in (200, 303)
        assert "link=failed" not in (done.headers.get("Location") or "")


async def test_organize_is_off_until_turned_on_then_works(demo: Demo) -> None:
    """A default link has no gmail.modify: archiving is 403 scope-not-granted whose grant starts
    a relink naming gmail.modify; after consent the account has organize and archiving works."""
    acc = demo.account_id
    mid = (await demo.message_ids(1))[0]
    archive = f"/v1/accounts/{acc}/messages/{mid}/modify"
    status, problem = await demo.call("POST", archive, "alice", json={"actions": ["archive"]})
    assert status == 403, problem
    assert problem["type"].endswith("/scope-not-granted")
    grant = problem["grant"]
    assert grant["href"] == f"/v1/accounts/{acc}/features"
    status, started = await demo.call("POST", grant["href"], "alice", json=grant["body"])
    assert status == 201, started
    assert "organize" in started["features"]
    assert "read" in started["features"]  # what the account had is asked for again
    async with demo.http.get(started["disclosure_url"]) as page:
        html = await page.text()
    assert GMAIL_MODIFY in html
    assert "Organize:" in html  # the disclosure page says why the scope is needed
    await _continue(demo, started["disclosure_url"])
    status, account = await demo.call("GET", f"/v1/accounts/{acc}", "alice")
    assert status == 200
    assert "organize" in account["features"]
    assert GMAIL_MODIFY in account["scopes"]
    status, body = await demo.call("POST", archive, "alice", json={"actions": ["archive"]})
    assert status == 200, body
    assert "INBOX" not in body.get("labelIds", [])


async def test_only_the_owner_may_turn_features_on(demo: Demo) -> None:
    """Another user asking to turn organize on for alice's account gets 404, as if unknown."""
    demo.tokens["bob"] = mint_token(demo.settings, "bob", Role.USER)
    status, problem = await demo.call(
        "POST", f"/v1/accounts/{demo.account_id}/features", "bob", json={"features": ["organize"]}
    )
    assert status == 404, problem
    status, problem = await demo.call(
        "POST", f"/v1/accounts/{demo.account_id}/features", "alice", json={"features": ["all"]}
    )
    assert status == 422, problem
