"""Accessibility: axe-core (vendored, MPL-2.0) run in the same Chromium on every page finds no
serious or critical violation; the pages fit a phone and a 200 % zoom without sideways scrolling;
the forms are keyboard operable. Screenshots of the pages the journey does not take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.web.auth import Role
from tests.webclient.conftest import AXE, Live

SERIOUS = ("serious", "critical")
_RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
}"""


def _serious(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(_RUN_AXE)
    return [v for v in found if v["impact"] in SERIOUS]


@pytest.fixture
def audited(browser: Any) -> Any:
    """A context whose pages accept axe's injected script (the CSP is bypassed for it alone)."""
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1200, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


def _pages(live: Live, account: str, message: str, thread: str, consent: str) -> dict[str, Any]:
    acc = f"/app/accounts/{account}"
    read = f"/app/operator/read?account_id={account}&consent_id={consent}&message_id={message}"
    return {
        (Role.USER, "alice"): [
            "/app/accounts", f"{acc}/inbox", f"{acc}/threads/{thread}", f"{acc}/compose",
            f"{acc}/compose?mode=reply_all&message_id={message}",
            f"{acc}/consents?message_id={message}", f"{acc}/history", f"{acc}/unlink",
        ],
        (Role.OPERATOR, "op-oscar"): ["/app/operator", read, "/app/operator/aggregates"],
        (Role.REVIEWER, "rev-rita"): ["/app/reviewer"],
    }  # fmt: skip


def _grant(page: Any, live: Live, account: str, message: str, grantee: str) -> str:
    page.goto(f"{live.base}/app/accounts/{account}/consents?message_id={message}")
    page.get_by_label("Support person (their staff id)").fill(grantee)
    page.keyboard.press("Enter")  # keyboard only: the form submits from its field
    page.wait_for_url("**notice=consent_granted")
    row = page.locator("table.consents tbody tr", has_text=grantee).first
    consent: str = row.get_attribute("data-consent-id")
    return consent


def test_no_serious_or_critical_axe_violations_on_any_page(
    live: Live, audited: Any, alice_account: str, shots: Path
) -> None:
    """Every page, for each role, passes axe-core without serious or critical violations."""
    page = audited.new_page()
    page.goto(live.signin_url("alice"))
    page.goto(f"{live.base}/app/accounts/{alice_account}/inbox?label=")  # all mail
    row = page.locator("table.messages tbody tr").first
    message = row.get_attribute("data-message-id")
    thread = row.locator("td a").get_attribute("href").rsplit("/", 1)[1]
    consent = _grant(page, live, alice_account, message, "op-oscar")
    failures: dict[str, Any] = {}
    page.goto(f"{live.base}/app/signin")
    failures["/app/signin"] = _serious(page)
    for (role, sub), paths in _pages(live, alice_account, message, thread, consent).items():
        page.goto(live.signin_url(sub, role))
        for path in paths:
            page.goto(live.base + path)
            failures[path] = _serious(page)
    page.goto(live.signin_url("rev-rita", Role.REVIEWER))
    page.get_by_role("button", name="Verify hash chain and signatures").click()
    page.locator("#verify-report").wait_for()
    failures["/app/reviewer (verified)"] = _serious(page)
    assert {path: v for path, v in failures.items() if v} == {}
    page.goto(f"{live.base}/app/signin")
    page.screenshot(path=str(shots / "00-signin.png"))


@pytest.mark.parametrize(("width", "height", "name"), [(390, 844, "phone"), (640, 450, "zoom-200")])
def test_pages_fit_a_phone_and_200_percent_zoom(
    live: Live, browser: Any, alice_account: str, shots: Path, width: int, height: int, name: str
) -> None:
    """No sideways scrolling on a 390 px phone or at 200 % zoom (a 640 px wide viewport)."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = ctx.new_page()
        page.goto(live.signin_url("alice"))
        acc = f"{live.base}/app/accounts/{alice_account}"
        page.goto(f"{acc}/inbox?label=")
        thread = page.locator("table.messages tbody td a").first.get_attribute("href")
        wide = {}
        for url in (f"{acc}/inbox", f"{live.base}{thread}", f"{acc}/compose", f"{acc}/history"):
            page.goto(url)
            wide[url] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert {u: w for u, w in wide.items() if w > 1} == {}
        page.goto(f"{acc}/inbox")
        page.screenshot(path=str(shots / f"15-inbox-{name}.png"), full_page=True)
    finally:
        ctx.close()


def test_compose_is_operable_by_keyboard_alone(
    live: Live, context: Any, alice_account: str
) -> None:
    """Tab reaches every compose field in order, each with its label, and Send."""
    page = context.new_page()
    page.goto(live.signin_url("alice"))
    page.goto(f"{live.base}/app/accounts/{alice_account}/compose")
    page.get_by_label("To", exact=True).focus()
    order = []
    for _ in range(7):
        order.append(page.evaluate(
            "document.activeElement.labels && document.activeElement.labels.length ? "
            "document.activeElement.labels[0].textContent : document.activeElement.textContent"
        ))  # fmt: skip
        page.keyboard.press("Tab")
    assert order == ["To", "Cc", "Bcc", "Subject", "Message", "Attachments", "Send"]
