"""Build the linking components from `Settings` (one place for the service and the demo).

linking = build_linking(settings, engine=engine, session=session, audit=audit_log)
linking.links.disclosure_page(...), linking.links.start_link(...), .complete_link(...)
linking.unlinker.unlink(account_id, user_id=...)
linking.accounts.require_feature(account_id, Feature.SEND)
linking.token_source  # the TokenSource for the Gmail client (via the gate's wiring)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.sink import AuditSink
from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.credentials import RefreshingTokenSource
from connector.accounts.link_state import LinkStateStore
from connector.accounts.oauth import LinkConfig, LinkService
from connector.accounts.store import AccountStore
from connector.accounts.unlink import AccountPurger, Unlinker
from connector.accounts.vault import Vault
from connector.settings import Settings, SettingsError


@dataclass(frozen=True)
class Linking:
    vault: Vault
    accounts: AccountStore
    credentials: VaultCredentialStore
    token_source: RefreshingTokenSource
    links: LinkService
    unlinker: Unlinker


def build_linking(
    settings: Settings,
    *,
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    audit: AuditSink,
    app_name: str = "The platform",
    purgers: Sequence[AccountPurger] = (),
) -> Linking:
    if not settings.oauth_client_id or not settings.oauth_client_secret:
        raise SettingsError(
            "CONNECTOR_OAUTH_CLIENT_ID and CONNECTOR_OAUTH_CLIENT_SECRET are required"
        )
    if not settings.audit_hash_key:
        raise SettingsError("CONNECTOR_AUDIT_HASH_KEY is required (keyed hash of linked addresses)")
    vault = Vault.from_settings(settings)
    config = LinkConfig.from_settings(settings, app_name=app_name)
    accounts = AccountStore(engine, vault, hash_key=settings.audit_hash_key.encode("utf-8"))
    credentials = VaultCredentialStore(engine, vault)
    token_source = RefreshingTokenSource(
        credentials,
        token_uri=config.token_uri,
        client_id=config.client_id,
        client_secret=config.client_secret,
        session=session,
        audit=audit,
    )
    links = LinkService(
        config,
        accounts=accounts,
        states=LinkStateStore(engine, vault),
        session=session,
        audit=audit,
    )
    unlinker = Unlinker(engine, vault, config.endpoints(session), audit, purgers=purgers)
    return Linking(vault, accounts, credentials, token_source, links, unlinker)
