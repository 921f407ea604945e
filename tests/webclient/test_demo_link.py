"""`connector demo` prints sign-in links; alice's opens her inbox in the web client."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from connector.demo import _signin
from connector.web.auth import Role
from tests.webclient.conftest import Live


def test_the_demo_sign_in_link_opens_alices_inbox(
    live: Live, context: Any, alice_account: str
) -> None:
    """The printed link signs alice in and lands on her inbox; `next` cannot leave the client."""
    demo: Any = SimpleNamespace(settings=live.settings, base=live.base)
    page = context.new_page()
    page.goto(_signin(demo, "alice", Role.USER, f"/app/accounts/{alice_account}/inbox"))
    assert page.url == f"{live.base}/app/accounts/{alice_account}/inbox"
    assert page.get_by_role("heading", name="Inbox").count() == 1
    assert page.locator("table.messages tbody tr").count() >= 1
    page.goto(_signin(demo, "alice", Role.USER, "//evil.example/app/"))
    assert page.url.startswith(live.base)
