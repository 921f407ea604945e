"""Accounts linked out of band: credentials handed over directly instead of the browser flow.

For the benchmark, tests and the demo when the link flow is not wanted: tokens the emulator
issued (or any authorized-user credentials) go into an in-memory credential store and are
refreshed by the real `RefreshingTokenSource`. There is no linking API in this mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from connector.accounts.credentials import MemoryCredentialStore, RefreshingTokenSource
from connector.ports import StoredCredentials
from connector.testing.memory import StaticAccountOwners
from connector.web.app import AccountsDeps
from connector.wiring import AccountsBundle


@dataclass(frozen=True, slots=True)
class PresetAccount:
    owner_id: str  # the platform user who owns it
    credentials: StoredCredentials


def preset_accounts(
    accounts: Mapping[str, PresetAccount],
) -> Callable[[AccountsDeps], AbstractAsyncContextManager[AccountsBundle]]:
    @contextlib.asynccontextmanager
    async def factory(deps: AccountsDeps) -> AsyncIterator[AccountsBundle]:
        store = MemoryCredentialStore()
        for account_id, preset in accounts.items():
            store.put(account_id, preset.credentials)
        settings = deps.settings
        tokens = RefreshingTokenSource(
            store, token_uri=settings.oauth_token_uri, client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret, session=deps.session, audit=deps.sink,
        )  # fmt: skip
        owners = StaticAccountOwners({a: p.owner_id for a, p in accounts.items()})
        yield AccountsBundle(owners=owners, token_source=tokens)

    return factory
