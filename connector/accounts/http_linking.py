"""The link flow as the HTTP API offers it, over `LinkService`, the accounts store and unlinking.

The browser that shows the disclosure page carries no bearer token, so starting a link hands
out a short-lived ticket (HMAC under the audit hash key, bound to the user and an expiry). The
disclosure page posts it back with the affirmative action; only then is Google's authorization
URL built and the state stored.

The ticket is a bearer URL, so the flow is bound to a browser: the disclosure page sets a link
cookie (random, HttpOnly, SameSite=Lax, ten minutes; the web layer sets it) and the first
browser to open a ticket claims it. Continue from any other browser is refused, and the pending
link keeps that browser's cookie hash, which the OAuth callback must present: a forwarded
disclosure link, or a forwarded Google authorization URL, cannot link someone else's Gmail into
the account that started the flow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from connector.accounts.link_state import TicketClaims, state_hash
from connector.accounts.oauth import LinkService
from connector.accounts.scopes import Feature
from connector.accounts.store import AccountStore, LinkedAccount
from connector.accounts.unlink import Unlinker
from connector.clock import Clock, system_clock
from connector.errors import AccountNotLinkedError, LinkTicketError
from connector.settings import Settings, SettingsError

TICKET_TTL = 600
BROWSER_COOKIE = "connector_link_browser"  # the link cookie (see the module docstring)


def new_browser_id() -> str:
    """A fresh link cookie value: unguessable, URL-safe."""
    return secrets.token_urlsafe(32)


def _other_browser() -> LinkTicketError:
    return LinkTicketError(
        "ticket_other_browser",
        "this link was opened in another browser; links cannot be forwarded. Start linking "
        "again from your own account",
    )


FEATURES = (Feature.READ, Feature.SEND, Feature.DRAFTS)


def account_json(account: LinkedAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "email": account.email,
        "status": account.status.value,
        "status_reason": account.status_reason,
        "features": sorted(account.features),
        "scopes": sorted(account.scopes),
        "linked_at": account.linked_at.isoformat(),
    }


class Tickets:
    """Short-lived HMAC tickets binding a disclosure page to the user who asked for it."""

    def __init__(self, key: bytes, clock: Clock = system_clock) -> None:
        self._key = hashlib.sha256(b"link-ticket\x00" + key).digest()
        self._clock = clock

    def issue(self, user_id: str) -> str:
        expires = int(self._clock().timestamp()) + TICKET_TTL
        # a nonce: each start is its own ticket, claimed by its own browser
        nonce = secrets.token_urlsafe(12)
        claims = json.dumps({"sub": user_id, "exp": expires, "n": nonce}).encode()
        payload = base64.urlsafe_b64encode(claims).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def user(self, ticket: str) -> str:
        return self.claims(ticket)[0]

    def claims(self, ticket: str) -> tuple[str, int]:
        """The ticket's user and expiry (Unix seconds); LinkTicketError if forged or expired."""
        payload, _, signature = ticket.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise LinkTicketError("ticket_invalid", "the link ticket is not valid")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires, user_id = int(data["exp"]), str(data["sub"])
        except (ValueError, KeyError, TypeError, binascii.Error):  # signed by us: cannot happen
            raise LinkTicketError("ticket_invalid", "the link ticket is not valid") from None
        if expires < self._clock().timestamp():
            raise LinkTicketError("ticket_expired", "the link ticket expired; start again")
        return user_id, expires

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


class HttpLinking:
    """`connector.wiring.Linking` over the real link flow."""

    def __init__(
        self,
        settings: Settings,
        service: LinkService,
        accounts: AccountStore,
        unlinker: Unlinker,
        clock: Clock = system_clock,
        *,
        claims: TicketClaims,
    ) -> None:
        self._unlinker = unlinker
        self._claims = claims
        self._clock = clock
        if not settings.oauth_redirect_uris:
            raise SettingsError("CONNECTOR_OAUTH_REDIRECT_URIS must name the OAuth callback URL")
        self._base = settings.public_base_url.rstrip("/")
        self._redirect = settings.oauth_redirect_uris[0]
        self._service = service
        self._accounts = accounts
        self._tickets = Tickets(settings.audit_hash_key.encode(), clock)

    async def start(self, user_id: str, *, request_id: str | None) -> dict[str, Any]:
        ticket = self._tickets.issue(user_id)
        return {
            "disclosure_url": f"{self._base}/v1/link/disclosure?ticket={ticket}",
            "expires_in": TICKET_TTL,
        }

    async def disclosure(self, ticket: str, browser: str) -> str:
        """The page, once `browser` (its link cookie) holds the ticket; another browser's
        claim is refused."""
        _, expires = self._tickets.claims(ticket)
        await self._claims.purge_expired(self._clock())
        until = datetime.fromtimestamp(expires, UTC)
        if not await self._claims.claim(ticket, state_hash(browser), until):
            raise _other_browser()
        return self._service.disclosure_page(
            FEATURES, confirm_action=f"{self._base}/v1/link/start", hidden_fields={"ticket": ticket}
        )

    async def begin(self, ticket: str, accepted: bool, browser: str | None) -> str:
        user_id = self._tickets.user(ticket)
        if browser is None or not await self._claims.owned_by(ticket, state_hash(browser)):
            raise _other_browser()
        start = await self._service.start_link(
            user_id=user_id, features=FEATURES, redirect_uri=self._redirect,
            disclosure_accepted=accepted, browser_hash=state_hash(browser),
        )  # fmt: skip
        return start.authorization_url

    async def complete(
        self,
        state: str,
        code: str | None,
        error: str | None,
        *,
        request_id: str | None,
        browser: str | None = None,
    ) -> dict[str, Any]:
        account = await self._service.complete_link(
            state=state, code=code, error=error,
            browser_hash=state_hash(browser) if browser is not None else "",
        )  # fmt: skip
        return account_json(account)

    async def status(self, user_id: str, account_id: str) -> dict[str, Any]:
        account = await self._accounts.get(account_id)
        if account.owner_user_id != user_id:
            raise AccountNotLinkedError(account_id)  # no hint that someone else linked it
        return account_json(account)

    async def accounts(self, user_id: str) -> list[dict[str, Any]]:
        return [account_json(a) for a in await self._accounts.list_for_owner(user_id)]

    async def unlink(self, user_id: str, account_id: str) -> dict[str, Any]:
        receipt = await self._unlinker.unlink(account_id, user_id=user_id)
        return dict(receipt.as_dict())
