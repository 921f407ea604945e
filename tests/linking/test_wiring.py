"""Settings-driven wiring, scope choices and error hygiene."""

from __future__ import annotations

import pytest

from connector.accounts.scopes import (
    FORBIDDEN_SCOPES,
    Feature,
    feature_enabled,
    required_scope,
    scopes_for,
)
from connector.db import create_engine, migrate
from connector.errors import VaultError
from connector.policy.recorder import Recorder
from connector.settings import Settings, SettingsError
from connector.wiring import build_accounts
from tests.linking.conftest import COMPOSE, READ, SEND, link_account, vault_keys


def test_each_feature_asks_its_narrowest_scope():
    """Read, Send and Drafts map to readonly, send and compose; never full mail access."""
    assert required_scope(Feature.READ) == READ
    assert required_scope(Feature.SEND) == SEND
    assert required_scope(Feature.DRAFTS) == COMPOSE
    every = scopes_for(Feature)
    assert not FORBIDDEN_SCOPES & set(every)
    assert scopes_for([Feature.SEND]) == (SEND, "https://www.googleapis.com/auth/userinfo.email")
    assert not feature_enabled(Feature.READ, [SEND, COMPOSE])


async def test_build_accounts_from_settings_links_end_to_end(emu, session, audit_log, tmp_path):
    """Components built from CONNECTOR_* settings link an account through the emulator."""
    settings = Settings.from_env(
        {
            "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
            "CONNECTOR_OAUTH_AUTH_URI": emu.auth_uri,
            "CONNECTOR_OAUTH_TOKEN_URI": emu.token_uri,
            "CONNECTOR_OAUTH_REVOKE_URI": emu.revoke_uri,
            "CONNECTOR_OAUTH_USERINFO_URI": emu.userinfo_uri,
            "CONNECTOR_OAUTH_CLIENT_ID": emu.client_id,
            "CONNECTOR_OAUTH_CLIENT_SECRET": emu.client_secret,
            "CONNECTOR_OAUTH_REDIRECT_URIS": "http://127.0.0.1:8765/oauth/callback",
            "CONNECTOR_VAULT_KEYS": vault_keys("k1"),
            "CONNECTOR_AUDIT_HASH_KEY": "hash-key",
        }
    )
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        built = build_accounts(
            settings, engine=engine, session=session, recorder=Recorder(audit_log)
        )

        class Wired:
            service = built.links
            accounts = built.accounts

        Wired.session = session
        Wired.emu = emu
        account = await link_account(Wired)  # type: ignore[arg-type]
        token = await built.token_source.access_token(account.id)
        assert token.scopes == account.scopes
        receipt = await built.unlinker.unlink(account.id, user_id="user-1")
        assert receipt.rows_deleted["accounts_account"] == 1
    finally:
        await engine.dispose()


def test_missing_settings_are_named():
    """Missing keys or client credentials fail with the variable to set."""
    with pytest.raises(VaultError, match="CONNECTOR_VAULT_KEYS"):
        build_accounts(
            Settings(oauth_client_id="c", oauth_client_secret="s", audit_hash_key="h"),
            engine=None, session=None, recorder=None,  # type: ignore[arg-type]
        )  # fmt: skip
    with pytest.raises(SettingsError, match="CONNECTOR_OAUTH_CLIENT_ID"):
        build_accounts(Settings(), engine=None, session=None, recorder=None)  # type: ignore[arg-type]
