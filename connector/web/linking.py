"""The link flow over HTTP, on top of `connector.accounts.oauth.LinkService` and the accounts store.

The browser that shows the disclosure page carries no bearer token, so starting a link hands
out a short-lived ticket (HMAC under the audit hash key, bound to the user and an expiry). The
disclosure page posts it back with the affirmative action; only then is Google's authorization
URL built and the state stored.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.credentials import RefreshingTokenSource
from connector.accounts.link_state import LinkStateStore
from connector.accounts.oauth import LinkConfig, LinkService
from connector.accounts.scopes import Feature
from connector.accounts.store import AccountStore, LinkedAccount
from connector.accounts.unlink import Unlinker
from connector.accounts.vault import Vault
from connector.errors import AccountNotLinkedError
from connector.inbox.send_keys import SendKeysPurger
from connector.policy.purge import PolicyPurger
from connector.settings import Settings, SettingsError
from connector.web.app import AccountsDeps
from connector.web.problems import ProblemError, ProblemType
from connector.wiring import AccountsBundle

TICKET_TTL = 600
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
    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"link-ticket\x00" + key).digest()

    def issue(self, user_id: str) -> str:
        payload = (
            base64.urlsafe_b64encode(
                json.dumps({"sub": user_id, "exp": int(time.time()) + TICKET_TTL}).encode()
            )
            .decode()
            .rstrip("=")
        )
        return f"{payload}.{self._sign(payload)}"

    def user(self, ticket: str) -> str:
        payload, _, signature = ticket.partition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise ProblemError(ProblemType.UNAUTHENTICATED, "the link ticket is not valid")
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if int(data["exp"]) < time.time():
            raise ProblemError(ProblemType.UNAUTHENTICATED, "the link ticket expired; start again")
        return str(data["sub"])

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


class HttpLinking:
    """`connector.wiring.Linking` over the real link flow."""

    def __init__(
        self, settings: Settings, service: LinkService, accounts: AccountStore, unlinker: Unlinker
    ) -> None:
        self._unlinker = unlinker
        if not settings.oauth_redirect_uris:
            raise SettingsError("CONNECTOR_OAUTH_REDIRECT_URIS must name the OAuth callback URL")
        self._base = settings.public_base_url.rstrip("/")
        self._redirect = settings.oauth_redirect_uris[0]
        self._service = service
        self._accounts = accounts
        self._tickets = Tickets(settings.audit_hash_key.encode())

    async def start(self, user_id: str, *, request_id: str | None) -> dict[str, Any]:
        ticket = self._tickets.issue(user_id)
        return {
            "disclosure_url": f"{self._base}/v1/link/disclosure?ticket={ticket}",
            "expires_in": TICKET_TTL,
        }

    async def disclosure(self, ticket: str) -> str:
        self._tickets.user(ticket)
        return self._service.disclosure_page(
            FEATURES, confirm_action=f"{self._base}/v1/link/start", hidden_fields={"ticket": ticket}
        )

    async def begin(self, ticket: str, accepted: bool) -> str:
        start = await self._service.start_link(
            user_id=self._tickets.user(ticket), features=FEATURES, redirect_uri=self._redirect,
            disclosure_accepted=accepted,
        )  # fmt: skip
        return start.authorization_url

    async def complete(
        self, state: str, code: str | None, error: str | None, *, request_id: str | None
    ) -> dict[str, Any]:
        account = await self._service.complete_link(state=state, code=code, error=error)
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


@contextlib.asynccontextmanager
async def real_accounts(deps: AccountsDeps) -> AsyncIterator[AccountsBundle]:
    """Accounts in the connector database, tokens sealed by the vault, the real link flow."""
    settings = deps.settings
    vault = Vault.from_settings(settings)
    store = AccountStore(deps.engine, vault, hash_key=settings.audit_hash_key.encode())
    tokens = RefreshingTokenSource(
        VaultCredentialStore(deps.engine, vault), token_uri=settings.oauth_token_uri,
        client_id=settings.oauth_client_id, client_secret=settings.oauth_client_secret,
        session=deps.session, audit=deps.sink,
    )  # fmt: skip
    service = LinkService(
        LinkConfig.from_settings(settings), accounts=store,
        states=LinkStateStore(deps.engine, vault), session=deps.session, audit=deps.sink,
    )  # fmt: skip
    config = LinkConfig.from_settings(settings)
    # Delete-my-data covers the other layers' per-account rows too (consents, usage counters,
    # Idempotency-Key records).
    unlinker = Unlinker(
        deps.engine, vault, config.endpoints(deps.session), deps.sink,
        purgers=(PolicyPurger(), SendKeysPurger()),
    )  # fmt: skip
    yield AccountsBundle(
        owners=store, token_source=tokens,
        linking=HttpLinking(settings, service, store, unlinker),
    )  # fmt: skip
