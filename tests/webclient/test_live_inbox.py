"""New mail appears in the open inbox without a reload: Gmail push (the emulator's Pub/Sub) →
the service's live mailbox → the change feed → the page's EventSource → the rows refreshed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.webclient.conftest import Live, signed_in

RAW = (
    b"From: Carol <carol@example.com>\r\nTo: alice@example.com\r\n"
    b"Subject: Arrived while you watched\r\n\r\nHello there.\r\n"
)


def _arrive(live: Live, subject: str) -> str:
    raw = RAW.replace(b"Arrived while you watched", subject.encode())

    return live.deliver(raw).id


def test_new_mail_appears_in_the_open_inbox_without_a_reload(
    live: Live, context: Any, alice_account: str, shots: Path
) -> None:
    page = signed_in(live, context)
    page.goto(f"{live.base}/app/accounts/{alice_account}/inbox")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    first = _arrive(live, "Arrived while you watched")
    row = page.locator(f'tr[data-message-id="{first}"]')
    row.wait_for(timeout=20_000)
    assert row.get_attribute("class") == "unread"
    assert "Arrived while you watched" in row.inner_text()
    assert page.locator("#live-status").inner_text() == "The message list was updated."
    page.locator(f"#sel-{first}").check()  # a ticked message stays ticked through a refresh
    second = _arrive(live, "And another one")
    page.locator(f'tr[data-message-id="{second}"]').wait_for(timeout=20_000)
    assert page.locator(f"#sel-{first}").is_checked()
    assert navigations == []  # no reload
    page.screenshot(path=str(shots / "04b-inbox-live.png"), full_page=True)
