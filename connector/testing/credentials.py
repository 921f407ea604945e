"""An in-memory `CredentialStore` with the vault store's contract, for tests and preset accounts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from connector.errors import AccountNotLinkedError, NeedsRelinkError
from connector.ports import StoredCredentials


@dataclass(slots=True)
class _MemoryEntry:
    creds: StoredCredentials
    relink_reason: str | None = None

    def __repr__(self) -> str:
        return f"_MemoryEntry(scopes={sorted(self.creds.scopes)}, relink={self.relink_reason!r})"


class MemoryCredentialStore:
    """An in-memory `CredentialStore` (and `RefreshTokenSink`) for tests and the demo.

    Real code with the same contract as the vault store: unknown accounts raise
    `AccountNotLinkedError`, accounts marked for relinking raise `NeedsRelinkError`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _MemoryEntry] = {}

    def __repr__(self) -> str:
        return f"MemoryCredentialStore(accounts={len(self._entries)})"

    def put(self, account_id: str, creds: StoredCredentials) -> None:
        """Link (or relink) an account with fresh credentials."""
        self._entries[account_id] = _MemoryEntry(creds)

    def remove(self, account_id: str) -> bool:
        return self._entries.pop(account_id, None) is not None

    def relink_reason(self, account_id: str) -> str | None:
        entry = self._entries.get(account_id)
        return entry.relink_reason if entry else None

    async def load(self, account_id: str) -> StoredCredentials:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        if entry.relink_reason is not None:
            raise NeedsRelinkError(account_id, f"marked for relinking ({entry.relink_reason})")
        return entry.creds

    async def save_access_token(
        self, account_id: str, access_token: str, expiry: datetime | None, scopes: frozenset[str]
    ) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.creds = replace(entry.creds, access_token=access_token, expiry=expiry, scopes=scopes)

    async def replace_refresh_token(self, account_id: str, refresh_token: str) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.creds = replace(entry.creds, refresh_token=refresh_token)

    async def mark_needs_relink(self, account_id: str, reason: str) -> None:
        entry = self._entries.get(account_id)
        if entry is None:
            raise AccountNotLinkedError(account_id)
        entry.relink_reason = reason
