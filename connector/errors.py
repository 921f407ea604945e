"""Errors shared across layers that callers need to tell apart.

ConnectorError
├── NeedsRelinkError        the refresh token is dead (invalid_grant); the user must link again
├── ScopeNotGrantedError    the user did not grant the scope a feature needs
├── AccountNotLinkedError   no linked Gmail account for this id
├── CompositionError        a message we refuse to build or upload (before any request)
│   └── MessageTooLargeError    over Gmail's 35 MB upload limit for send and drafts
├── IdempotencyConflictError    a send with the same Idempotency-Key is still running
└── IdempotencyMismatchError    the Idempotency-Key was used for a different request

The Gmail client's own tree lives in `connector.gmail.errors`; policy denials in `connector.policy`.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of errors the connector raises on purpose."""


class NeedsRelinkError(ConnectorError):
    def __init__(
        self, account_id: str, detail: str = "the Gmail authorization is no longer valid"
    ) -> None:
        super().__init__(f"account {account_id} needs relinking: {detail}")
        self.account_id = account_id


class ScopeNotGrantedError(ConnectorError):
    def __init__(self, account_id: str, feature: str, scope: str) -> None:
        super().__init__(
            f"account {account_id} has not granted {scope!r}, which {feature} needs; "
            f"link again and tick the {feature} permission on Google's consent page"
        )
        self.account_id = account_id
        self.feature = feature
        self.scope = scope


class AccountNotLinkedError(ConnectorError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no linked Gmail account {account_id}")
        self.account_id = account_id


class CompositionError(ConnectorError, ValueError):
    """A message the connector refuses to compose or upload (header injection, recipients, ...)."""


class MessageTooLargeError(CompositionError):
    """The message exceeds Gmail's upload limit for send and drafts."""


class IdempotencyConflictError(ConnectorError):
    """A send with the same Idempotency-Key is in progress (possibly in another process)."""


class IdempotencyMismatchError(ConnectorError):
    """The Idempotency-Key was already used for a request with a different body."""
