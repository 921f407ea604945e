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

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from connector.accounts.disclosure import render_link_outcome
from connector.accounts.link_state import TicketClaims, state_hash
from connector.accounts.oauth import LinkService
from connector.accounts.scopes import DEFAULT_FEATURES, Feature
from connector.accounts.store import AccountStore, LinkedAccount
from connector.accounts.tickets import TICKET_TTL, Ticket, Tickets
from connector.accounts.unlink import Unlinker
from connector.clock import Clock, system_clock
from connector.errors import (
    AccountNotLinkedError,
    LinkError,
    LinkTicketError,
    ReturnUrlNotAllowedError,
)
from connector.settings import Settings, SettingsError

__all__ = ["BROWSER_COOKIE", "TICKET_TTL", "HttpLinking", "LinkOutcome", "new_browser_id"]
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


FEATURES = DEFAULT_FEATURES
# Work for a newly linked account (the live mailbox's watch and baseline); must not raise.
AfterLink = Callable[[str], Awaitable[None]]


def _features(claims: Ticket) -> tuple[Feature, ...]:
    """What a ticket's link asks for: its features (a feature grant), else the defaults."""
    return tuple(Feature(f) for f in claims.features) or FEATURES


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """How a callback ended: the account (linked) or a reason code, and where the browser goes."""

    account: dict[str, Any] | None
    reason: str | None
    detail: str
    return_url: str | None
    app_name: str

    def location(self) -> str:
        """The return URL with the outcome in its query (`link=linked&account_id=...` or
        `link=failed&reason=...`); only codes and ids, never an address."""
        assert self.return_url is not None
        outcome = (
            {"link": "linked", "account_id": self.account["id"]}
            if self.account is not None
            else {"link": "failed", "reason": self.reason or "unknown"}
        )
        joiner = "&" if "?" in self.return_url else "?"
        return f"{self.return_url}{joiner}{urlencode(outcome)}"

    def page(self) -> str:
        return render_link_outcome(
            app_name=self.app_name, linked=self.account is not None, detail=self.detail,
            reason=self.reason,
        )  # fmt: skip


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


class HttpLinking:
    """Account lifecycle as the HTTP API offers it (`connector.wiring.Linking`), over the real
    link flow."""

    def __init__(
        self,
        settings: Settings,
        service: LinkService,
        accounts: AccountStore,
        unlinker: Unlinker,
        clock: Clock = system_clock,
        *,
        claims: TicketClaims,
        after_link: Sequence[AfterLink] = (),
    ) -> None:
        self._unlinker = unlinker
        self._after_link = tuple(after_link)
        self._claims = claims
        self._clock = clock
        if not settings.oauth_redirect_uris:
            raise SettingsError("CONNECTOR_OAUTH_REDIRECT_URIS must name the OAuth callback URL")
        self._base = settings.public_base_url.rstrip("/")
        self._redirect = settings.oauth_redirect_uris[0]
        self._service = service
        self._accounts = accounts
        self._tickets = Tickets(settings.audit_hash_key.encode(), clock)
        self._returns = settings.link_return_urls
        self._app_name = settings.app_name

    async def start(
        self, user_id: str, *, request_id: str | None, return_url: str | None = None
    ) -> dict[str, Any]:
        """A ticket for the disclosure page; `return_url` (allow-listed, exact match; default
        the first configured) is where the callback sends the browser back."""
        if return_url is not None and return_url not in self._returns:
            raise ReturnUrlNotAllowedError()
        back = return_url or (self._returns[0] if self._returns else None)
        ticket = self._tickets.issue(user_id, back)
        return {
            "disclosure_url": f"{self._base}/v1/link/disclosure?ticket={ticket}",
            "expires_in": TICKET_TTL,
        }

    async def start_features(
        self, user_id: str, account_id: str, features: Iterable[Feature],
        *, request_id: str | None, return_url: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """A ticket to turn `features` on for a linked account (incremental authorization):
        the disclosure page then names the new scopes, and the link keeps the ones granted."""
        account = await self._accounts.get(account_id)
        if account.owner_user_id != user_id:
            raise AccountNotLinkedError(account_id)  # no hint that someone else linked it
        if return_url is not None and return_url not in self._returns:
            raise ReturnUrlNotAllowedError()
        back = return_url or (self._returns[0] if self._returns else None)
        wanted = sorted({*account.features, *features})
        ticket = self._tickets.issue(user_id, back, features=tuple(wanted), account_id=account_id)
        return {
            "disclosure_url": f"{self._base}/v1/link/disclosure?ticket={ticket}",
            "expires_in": TICKET_TTL,
            "features": wanted,
        }

    async def disclosure(self, ticket: str, browser: str) -> str:
        """The page, once `browser` (its link cookie) holds the ticket; another browser's
        claim is refused."""
        claims = self._tickets.claims(ticket)
        await self._claims.purge_expired(self._clock())
        until = datetime.fromtimestamp(claims.expires, UTC)
        if not await self._claims.claim(ticket, state_hash(browser), until):
            raise _other_browser()
        return self._service.disclosure_page(
            _features(claims), confirm_action=f"{self._base}/v1/link/start",
            hidden_fields={"ticket": ticket},
        )  # fmt: skip

    async def begin(self, ticket: str, accepted: bool, browser: str | None) -> str:
        """After the affirmative action on the disclosure page: Google's authorization URL."""
        claims = self._tickets.claims(ticket)
        if browser is None or not await self._claims.owned_by(ticket, state_hash(browser)):
            raise _other_browser()
        start = await self._service.start_link(
            user_id=claims.user_id, features=_features(claims), redirect_uri=self._redirect,
            disclosure_accepted=accepted, browser_hash=state_hash(browser),
            return_url=claims.return_url, account_id=claims.account_id,
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
    ) -> LinkOutcome:
        """Finish linking from the OAuth callback (in the browser that began it): the outcome,
        failures included (recorded by the link service), and where the browser goes back to."""
        try:
            done = await self._service.finish_link(
                state=state, code=code, error=error,
                browser_hash=state_hash(browser) if browser is not None else "",
            )  # fmt: skip
        except LinkError as exc:
            return LinkOutcome(None, exc.reason, str(exc), exc.return_url, self._app_name)
        for hook in self._after_link:  # e.g. the live mailbox watches it from now on
            await hook(done.account.id)
        account = account_json(done.account)
        return LinkOutcome(account, None, "linked", done.return_url, self._app_name)

    async def status(self, user_id: str, account_id: str) -> dict[str, Any]:
        account = await self._accounts.get(account_id)
        if account.owner_user_id != user_id:
            raise AccountNotLinkedError(account_id)  # no hint that someone else linked it
        return account_json(account)

    async def accounts(self, user_id: str) -> list[dict[str, Any]]:
        return [account_json(a) for a in await self._accounts.list_for_owner(user_id)]

    async def unlink(self, user_id: str, account_id: str) -> dict[str, Any]:
        """Revoke at Google, purge what the connector holds, return the deletion receipt."""
        receipt = await self._unlinker.unlink(account_id, user_id=user_id)
        return dict(receipt.as_dict())
