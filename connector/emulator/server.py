"""Run the Gmail API + Google OAuth emulator on loopback, programmatically or from the CLI.

Programmatic API (used by tests, the demo and benchmarks)::

    from connector.emulator.server import EmulatorConfig, run_emulator
    async with run_emulator(EmulatorConfig(seed="demo", users=3, messages_per_user=20)) as emu:
        emu.base_url          # "http://127.0.0.1:PORT/"
        emu.gmail_endpoint    # api_endpoint for googleapiclient (same as base_url)
        emu.batch_uri         # base_url + "batch/gmail/v1"
        emu.token_uri, emu.auth_uri, emu.revoke_uri, emu.userinfo_uri, emu.tokeninfo_uri
        emu.client_id, emu.client_secret
        emu.connector_settings() -> the Settings fields naming those URLs and the client
        emu.users             # seeded e-mail addresses, e.g. ["alice@example.com", ...]
        emu.state             # EmulatorState: mailboxes, messages, labels, history (mutable)
        emu.issue_tokens(email, scopes) -> {"access_token", "refresh_token", "expires_in", "scope"}
        emu.authorized_user_info(email, scopes=None) -> google-auth authorized-user dict
        emu.revoke_user(email); emu.expire_access_tokens(email=None)
        emu.set_faults(FaultConfig | None); emu.set_quota(QuotaConfig | None)
        emu.set_auto_approve(bool)
        emu.count_messages(email, label="SENT") -> int
        emu.stats             # EmulatorStats: requests per method, rate_limited, units_charged
        emu.pubsub_endpoint   # api_endpoint for the pubsub v1 client (same as base_url)
        emu.pubsub            # PubSubState: topics, subscriptions; users.watch publishes here

For synchronous callers (googleapiclient in a plain test), `run_emulator_in_thread(config)` is a
context manager yielding the same object with the server running on a background event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from aiohttp import web

from connector.emulator import errors
from connector.emulator.api import ApiRequest, EmulatorStats, GmailApi, error_response
from connector.emulator.batch import run_batch
from connector.emulator.faults import FaultConfig, FaultInjector
from connector.emulator.gmail_push import GmailPush
from connector.emulator.oauth_routes import OAuthConfig, OAuthService
from connector.emulator.pubsub import PubSubState
from connector.emulator.pubsub_routes import add_routes as add_pubsub_routes
from connector.emulator.quota import QuotaConfig, QuotaTracker
from connector.emulator.seed import seed_state
from connector.emulator.sending_limit import SendingLimit
from connector.emulator.state import EmulatorState
from connector.emulator.tokens import TokenStore
from connector.logs import get_logger

log = get_logger(__name__)
GMAIL = "https://www.googleapis.com/auth/gmail."
DEFAULT_SCOPES: tuple[str, ...] = (
    GMAIL + "readonly",
    GMAIL + "compose",
    GMAIL + "send",
    GMAIL + "modify",
    GMAIL + "labels",
)
MAX_BODY = 80 * 1024 * 1024  # a 35 MB message base64-encoded in JSON, plus headroom


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: str | int = "demo"
    users: int = 3
    messages_per_user: int = 20
    auto_approve: bool = True
    quota: QuotaConfig | None = None
    faults: FaultConfig | None = None
    client_id: str = "emulator-client-id.apps.googleusercontent.com"
    client_secret: str = "emulator-secret"
    allowed_redirect_uris: tuple[str, ...] = ()
    allow_loopback_redirects: bool = True
    history_retention: int = 10_000
    daily_send_limit: int | None = None  # Gmail's mail-sending limit per user; None: no cap
    default_scopes: tuple[str, ...] = DEFAULT_SCOPES
    pubsub_pull_wait: float = 2.0  # seconds a pull with nothing ready waits (long polling)


class ConnectorSettings(TypedDict):
    """The connector's `Settings` fields that point it at a running emulator."""

    gmail_api_endpoint: str
    oauth_auth_uri: str
    oauth_token_uri: str
    oauth_revoke_uri: str
    oauth_userinfo_uri: str
    oauth_client_id: str
    oauth_client_secret: str


class _BaseUrl:
    """A read-only `Emulator` attribute: `path` under the emulator's `base_url`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, emu: Emulator, owner: object = None) -> str:
        return emu.base_url + self.path

    def __set__(self, emu: Emulator, value: str) -> None:
        raise AttributeError("the emulator's URLs follow base_url")


@dataclass
class Emulator:
    """A running emulator: URLs, state and control helpers (see module docstring)."""

    config: EmulatorConfig
    state: EmulatorState
    tokens: TokenStore = field(default_factory=TokenStore)
    stats: EmulatorStats = field(default_factory=EmulatorStats)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.pubsub = PubSubState()
        self.state.attach_push(GmailPush(self.pubsub))
        self.quota = QuotaTracker(self.config.quota)
        self.faults = FaultInjector(self.config.faults)
        self.sending = SendingLimit(self.config.daily_send_limit)
        self.api = GmailApi(
            self.state, self.tokens, self.quota, self.faults, self.stats, sending=self.sending
        )
        self.oauth = OAuthService(
            OAuthConfig(
                self.config.client_id,
                self.config.client_secret,
                self.config.allowed_redirect_uris,
                self.config.allow_loopback_redirects,
                self.config.auto_approve,
            ),
            self.state,
            self.tokens,
        )

    # -- URLs (under base_url, so only meaningful once the emulator listens) -------------
    gmail_endpoint = _BaseUrl("")  # api_endpoint for googleapiclient
    pubsub_endpoint = _BaseUrl("")  # Pub/Sub's paths (/v1/projects/...) share the root
    batch_uri = _BaseUrl("batch/gmail/v1")
    token_uri = _BaseUrl("token")
    auth_uri = _BaseUrl("o/oauth2/v2/auth")
    revoke_uri = _BaseUrl("revoke")
    userinfo_uri = _BaseUrl("v1/userinfo")
    tokeninfo_uri = _BaseUrl("tokeninfo")

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def users(self) -> list[str]:
        return self.state.users

    def client_config(self) -> dict[str, Any]:
        """google-auth-oauthlib client config ("installed" app) pointing at this emulator."""
        return {
            "installed": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "redirect_uris": ["http://127.0.0.1"],
            }
        }

    def connector_settings(self) -> ConnectorSettings:
        """The connector's settings that point it at this emulator: the Gmail API, Google's
        OAuth endpoints and the OAuth client (`Settings(**emu.connector_settings(), ...)`)."""
        return {
            "gmail_api_endpoint": self.gmail_endpoint,
            "oauth_auth_uri": self.auth_uri,
            "oauth_token_uri": self.token_uri,
            "oauth_revoke_uri": self.revoke_uri,
            "oauth_userinfo_uri": self.userinfo_uri,
            "oauth_client_id": self.client_id,
            "oauth_client_secret": self.client_secret,
        }

    def connector_env(self) -> dict[str, str]:
        """The same settings as `CONNECTOR_*` environment variables, for a `connector serve`."""
        settings = self.connector_settings().items()
        return {f"CONNECTOR_{name.upper()}": str(value) for name, value in settings}

    # -- control -------------------------------------------------------------------------
    def _require_user(self, email: str) -> str:
        box = self.state.mailbox(email)
        if box is None:
            raise KeyError(f"no emulated user {email!r}")
        return box.email

    def issue_tokens(
        self, email: str, scopes: list[str] | tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Tokens for `email` as if the user had consented, without the browser flow."""
        user = self._require_user(email)
        granted = tuple(scopes or self.config.default_scopes)
        refresh = self.tokens.new_refresh(self.client_id, user, granted)
        access = self.tokens.new_access(self.client_id, user, granted, refresh.token)
        self.oauth.grants.setdefault((self.client_id, user), set()).update(granted)
        return {
            "access_token": access.token,
            "refresh_token": refresh.token,
            "expires_in": self.tokens.lifetime,
            "scope": " ".join(granted),
            "token_type": "Bearer",
        }

    def authorized_user_info(
        self, email: str, scopes: list[str] | tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """google-auth authorized-user JSON (`Credentials.from_authorized_user_info` accepts it).

        Caveat: google-auth 2.62's `from_authorized_user_info` replaces `token_uri` with
        Google's, so to refresh against the emulator build `Credentials(...,
        token_uri=info["token_uri"])` yourself.
        """
        issued = self.issue_tokens(email, scopes)
        # `token` and `expiry` (google-auth's own keys, naive UTC) make the credentials valid
        # as loaded, so an unmodified client never refreshes (through Google) before expiry.
        expiry = datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]))
        return {
            "type": "authorized_user",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": issued["refresh_token"],
            "token": issued["access_token"],
            "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "token_uri": self.token_uri,
            "scopes": issued["scope"].split(),
            "account": self._require_user(email),
        }

    def revoke_user(self, email: str) -> None:
        self.tokens.revoke_user(self._require_user(email))

    def expire_access_tokens(self, email: str | None = None) -> None:
        self.tokens.expire_access(None if email is None else self._require_user(email))

    def set_faults(self, faults: FaultConfig | None) -> None:
        self.faults.set_config(faults)

    def set_quota(self, quota: QuotaConfig | None) -> None:
        self.quota.set_config(quota)

    def set_auto_approve(self, enabled: bool) -> None:
        self.oauth.config.auto_approve = enabled

    def count_messages(self, email: str, label: str = "SENT") -> int:
        box = self.state.mailbox(email)
        if box is None:
            raise KeyError(f"no emulated user {email!r}")
        return sum(1 for m in box.messages.values() if label in m.label_ids)


# -- HTTP ----------------------------------------------------------------------------------
def _query(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}


def _to_http(response_status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    return web.Response(status=response_status, body=body or None, headers=headers)


def build_app(emu: Emulator) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def gmail(request: web.Request) -> web.StreamResponse:
        body = await request.read() if request.can_read_body else b""
        response = await emu.api.handle(
            ApiRequest(request.method, request.path, _query(request), request.headers, body)
        )
        if response.drop:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # no response at all, as a dropped connection
        return _to_http(response.status, response.body, response.headers)

    async def batch(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload, content_type = await run_batch(
                emu.api,
                request.headers.get("Content-Type", ""),
                body,
                request.headers.get("Authorization"),
            )
        except errors.GmailError as exc:
            response = error_response(exc)
            return _to_http(response.status, response.body, response.headers)
        return web.Response(body=payload, headers={"Content-Type": content_type})

    app.router.add_route("*", "/gmail/{tail:.*}", gmail)
    app.router.add_route("*", "/upload/gmail/{tail:.*}", gmail)
    app.router.add_post("/batch", batch)
    app.router.add_post("/batch/gmail/v1", batch)
    emu.oauth.add_routes(app)
    add_pubsub_routes(app, emu.pubsub, emu.config.pubsub_pull_wait)
    return app


def create_emulator(config: EmulatorConfig) -> Emulator:
    state = seed_state(config.seed, config.users, config.messages_per_user)
    for box in state.mailboxes.values():
        box.history_retention = config.history_retention
    return Emulator(config, state)


@contextlib.asynccontextmanager
async def run_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[Emulator]:
    """Seed, listen on `config.host:config.port` (0 = any free port), yield, then shut down."""
    cfg = config or EmulatorConfig()
    emu = create_emulator(cfg)
    runner = web.AppRunner(build_app(emu), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True)
    await site.start()
    try:
        addresses = runner.addresses
        port = int(addresses[0][1]) if addresses else cfg.port
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        emu.base_url = f"http://{host}:{port}/"
        log.info("emulator_listening", port=port, users=len(emu.users))
        yield emu
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def run_emulator_in_thread(config: EmulatorConfig | None = None) -> Iterator[Emulator]:
    """Run the emulator on its own event loop in a daemon thread (for synchronous callers)."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with run_emulator(config) as emu:
                holder["emu"] = emu
                ready.set()
                await stop.wait()
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            raise

    def target() -> None:
        with contextlib.suppress(BaseException):
            loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=target, name="gmail-emulator", daemon=True)
    thread.start()
    ready.wait()
    if "error" in holder:
        thread.join()
        raise RuntimeError("emulator failed to start") from holder["error"]
    try:
        yield holder["emu"]
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
