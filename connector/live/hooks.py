"""The account lifecycle's hooks into the live mailbox, bound once the worker exists.

The accounts domain is built before the gate that uses its tokens, and the worker after the
gate, so the link flow and the unlinker get this object first and the worker is attached to it
later (`connector.wiring.build_live`). Unattached (sync off), both hooks do nothing.
"""

from __future__ import annotations

from typing import Protocol


class LiveAccounts(Protocol):
    async def adopt(self, account_id: str) -> None: ...

    async def release(self, account_id: str) -> None: ...


class LiveHooks:
    def __init__(self) -> None:
        self._live: LiveAccounts | None = None

    def attach(self, live: LiveAccounts | None) -> None:
        self._live = live

    async def after_link(self, account_id: str) -> None:
        """A new (or relinked) account: watched and baselined now, not at the next round."""
        if self._live is not None:
            await self._live.adopt(account_id)

    async def before_revoke(self, account_id: str) -> None:
        """Unlinking: Gmail push stopped while the grant still works."""
        if self._live is not None:
            await self._live.release(account_id)
