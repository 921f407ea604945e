"""Browser tests of the web client: Playwright (Python) driving Debian's Chromium.

The service (real link flow, SQLite, signed audit checkpoints: the demo's settings) and the Gmail
emulator (consent page shown, not auto-approved) run on loopback in a thread of their own, so the
tests use Playwright's sync API. One stack and one browser serve the whole session; each test gets
a fresh browser context (its own cookies). `scripts/test.sh` installs Chromium when it is missing
and sets CONNECTOR_REQUIRE_BROWSER=1, under which a missing browser fails instead of skipping.

Screenshots go to $CONNECTOR_SCREENSHOTS (the README's are made with
`CONNECTOR_SCREENSHOTS=docs/screenshots`), else to a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connector.demo import DEMO_SUBSCRIPTION, DEMO_TOPIC, demo_settings
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator
from connector.emulator.state import Mailbox, Message
from connector.settings import Settings
from connector.testing.fleet import free_port
from connector.web.app import create_app
from connector.web.auth import Role, mint_token
from connector.web.server import ServiceRunner
from connector.wiring import real_accounts

REQUIRE_BROWSER = os.environ.get("CONNECTOR_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
LAUNCH_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@dataclass
class Live:
    """The running stack, driven from the test thread."""

    directory: Path
    base: str = ""
    emu: Emulator = field(init=False)
    settings: Settings = field(init=False)
    app: web.Application = field(init=False)
    tracker_base: str = ""
    hits: list[str] = field(default_factory=list)  # paths the tracker server was asked for
    state: dict[str, Any] = field(default_factory=dict)  # what one test leaves for the next

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="webclient-stack", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60) or self._failed is not None:
            raise RuntimeError(f"the stack did not start: {self._failed!r}")

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the waiting test thread
            self._failed = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _tracker(self, request: web.Request) -> web.Response:
        """A stand-in for a sender's tracking server (and a cross-site attacker's page)."""
        self.hits.append(request.path)
        page = self.state.get("attacker_page")
        if request.path == "/attack" and isinstance(page, str):
            return web.Response(text=page, content_type="text/html")
        return web.Response(body=b"GIF89a", content_type="image/gif")

    async def _serve(self) -> None:
        config = EmulatorConfig(seed="webclient", users=2, messages_per_user=6, auto_approve=False)
        async with run_emulator(config) as emu:
            # Push as the demo has it: the deployment's topic and subscription exist.
            emu.pubsub.create_topic(DEMO_TOPIC)
            emu.pubsub.create_subscription(DEMO_SUBSCRIPTION, DEMO_TOPIC, ack_deadline=30)
            port = free_port()
            # The demo's settings, and the link flow returns to the client's accounts page.
            back = f"http://127.0.0.1:{port}/app/accounts"
            settings = demo_settings(self.directory, emu, port).model_copy(
                update={"link_return_urls": (back,)}
            )
            app = create_app(settings, accounts=real_accounts)
            runner = ServiceRunner(app, settings)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            tracker = web.Application()
            tracker.router.add_route("*", "/{tail:.*}", self._tracker)
            tracker_runner = web.AppRunner(tracker)
            await tracker_runner.setup()
            tracker_port = free_port()
            await web.TCPSite(tracker_runner, "127.0.0.1", tracker_port).start()
            self.emu, self.settings, self.app = emu, settings, app
            self.base = f"http://127.0.0.1:{port}"
            # Another site altogether: "localhost" is not the same site as "127.0.0.1".
            self.tracker_base = f"http://localhost:{tracker_port}"
            self._stop = asyncio.Event()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await tracker_runner.cleanup()
                await runner.cleanup()

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the stack's loop (emulator state, services) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def alice_box(self) -> Mailbox:
        """alice's (the first seeded user's) mailbox in the emulator."""
        box = self.emu.state.mailbox(self.emu.users[0])
        assert box is not None
        return box

    def deliver(self, raw: bytes) -> Message:
        """A mail lands in alice's inbox, unread, as Gmail would put it there."""

        async def add() -> Message:
            return self.alice_box().add_message(raw, ["INBOX", "UNREAD"])

        delivered: Message = self.call(add())
        return delivered

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def signin_url(self, sub: str, role: Role = Role.USER) -> str:
        token = mint_token(self.settings, sub, role, ttl_seconds=300)
        return f"{self.base}/app/signin?token={token}"


def _need_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_BROWSER:
            pytest.fail("playwright is not installed but the browser tests are required")
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).is_file():
        if REQUIRE_BROWSER:
            pytest.fail(f"no Chromium at {CHROMIUM} but the browser tests are required")
        pytest.skip("no Chromium: run the suite through scripts/test.sh (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="session")
def playwright_api() -> Any:
    """Playwright's sync API, once Chromium is known to be there (else fail or skip)."""
    return _need_browser()


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    """Debian's Chromium, headless, one per test module: Playwright's sync API runs an event
    loop in this thread while it is open, so it must be closed before other modules' asyncio
    tests run (pytest-asyncio refuses to start a loop inside a running one)."""
    with playwright_api() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, playwright_api: Any) -> Iterator[Live]:
    """Emulator + service + a tracker server on loopback, for the whole session."""
    stack = Live(tmp_path_factory.mktemp("webclient"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("CONNECTOR_SCREENSHOTS")
    directory = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def consent_flow(live: Live, page: Any, shots: Path | None = None) -> list[str]:
    """From the disclosure page through Google's (the emulator's) consent page and back;
    returns the scopes the consent page asked for."""
    page.wait_for_url("**/v1/link/disclosure**")
    if shots is not None:
        page.screenshot(path=str(shots / "02-disclosure.png"), full_page=True)
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_selector("select[name=login]")
    page.select_option("select[name=login]", live.emu.users[0])
    scopes: list[str] = page.locator("input[name=scope]").evaluate_all(
        "boxes => boxes.map(b => b.value)"
    )
    if shots is not None:
        page.screenshot(path=str(shots / "03-google-consent.png"), full_page=True)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/app/accounts?link=linked**")  # back where the user started
    assert "Your Gmail account is linked." in page.locator("#notice").inner_text()
    return scopes


def link_account(live: Live, context: Any, shots: Path | None = None) -> str:
    """Alice links her Gmail account in the browser: the web client's button, the disclosure,
    the emulator's consent page, back. Returns the account id."""
    page = context.new_page()
    page.goto(live.signin_url("alice"))
    page.get_by_role("button", name="Link a Gmail account").click()
    consent_flow(live, page, shots)
    page.goto(f"{live.base}/app/accounts")
    href = page.get_by_role("link", name="Open inbox").first.get_attribute("href")
    assert href is not None
    page.close()
    return href.split("/")[3]


@pytest.fixture
def alice_account(live: Live, browser: Any, shots: Path) -> str:
    """Alice's linked account id, linked through the browser when she has none (at the start,
    and again after the journey's unlink)."""
    if "account" not in live.state:
        ctx = browser.new_context()
        try:
            live.state["account"] = link_account(live, ctx, shots)
        finally:
            ctx.close()
    account: str = live.state["account"]
    return account


def signed_in(live: Live, context: Any, sub: str = "alice", role: Role = Role.USER) -> Any:
    page = context.new_page()
    page.set_default_timeout(10_000)  # a page here answers in milliseconds: fail fast
    page.goto(live.signin_url(sub, role))
    return page
