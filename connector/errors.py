"""The connector's one exception tree. Every error raised on purpose is a `ConnectorError`.

ConnectorError
├── SettingsError               a setting is missing or malformed (connector.settings)
├── SchemaVersionError          the connector database is at a revision this build does not know
├── AccountNotLinkedError       no linked Gmail account with this id (for this caller)
├── NeedsRelinkError            the refresh token is dead (invalid_grant): the user must link again
├── ScopeNotGrantedError        the user did not grant the scope a feature needs
├── AccountConflictError        a relink that would attach another Google account or user
├── LinkError                   a link that could not be started or completed (`reason` code)
│   ├── RedirectNotAllowedError     the redirect URI is not on the allow-list
│   ├── ReturnUrlNotAllowedError    the platform return URL is not on the allow-list
│   ├── LinkStateError              unknown, replayed, expired or foreign OAuth `state`
│   └── LinkTicketError             a disclosure-page ticket that is forged or expired
├── TokenEndpointError          Google's token endpoint refused or could not be reached
├── VaultError                  a key ring that cannot be loaded, a sealed value that won't open
├── CompositionError            a message we refuse to build or upload (before any request)
│   ├── HeaderInjectionError        a header value with a line break
│   └── MessageTooLargeError        over Gmail's 35 MB upload limit for send and drafts
├── IdempotencyConflictError    a send with the same Idempotency-Key is still running
├── IdempotencyMismatchError    the Idempotency-Key was used for a different request
├── RedeliveryInProgressError   a webhook dead letter another request is redelivering right now
├── HistoryEntryError           a Gmail history entry sync cannot read: retried, then quarantined
├── EvidencePackError           `connector evidence --out` cannot write there (not a new,
│                               empty or earlier pack directory)
├── PolicyError
│   ├── AccessDenied                the policy refused; carries the verdict (rule + reasons)
│   ├── AuditUnavailableError       the audit log could not be written: nothing happens
│   ├── PolicyInputError            a consent / access request / read that is malformed
│   └── PolicyRecordNotFoundError   no consent / access request with that id
└── GmailError                  the Gmail client's tree (connector.gmail.errors):
    ├── ApiError                    Auth / PermissionDenied / NotFound / InvalidRequest /
    │                               RateLimited / Server, classified from Google's envelope
    ├── NetworkError                no usable HTTP answer
    ├── QuotaWaitExceededError      queued for the mailbox's quota past the configured bound
    └── SendOutcomeUnknownError     a send may have happened and the search could not tell

The Gmail classes live beside the code that classifies Google's answers; anyone may import
`connector.gmail.errors` to catch them (the one-gate rule is about *calling* Gmail). The web
layer maps this tree to problem types by class (`connector.web.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.policy.rules import Deny


class ConnectorError(Exception):
    """Base of errors the connector raises on purpose."""


class SchemaVersionError(ConnectorError):
    """The database names migration revisions this build does not have: a newer build's, or a
    development build's from before the 0.1.0 baseline. Nothing is changed."""

    def __init__(self, unknown: Sequence[str]) -> None:
        super().__init__(
            f"the database is at revision {', '.join(unknown)}, which this build does not know "
            "(a newer build, or a development build before 0.1.0): run that build's "
            "`connector migrate`, or start from a new database"
        )
        self.unknown = tuple(unknown)


# -- accounts -------------------------------------------------------------------------------


class AccountNotLinkedError(ConnectorError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no linked Gmail account {account_id}")
        self.account_id = account_id


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


class AccountConflictError(ConnectorError):
    """A relink that would attach a different Google account, or another user's account."""


class LinkError(ConnectorError):
    """A link that could not be started or completed; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        # The allow-listed URL the browser goes back to with the outcome (set by the link
        # service once the link attempt is known; None: a plain page).
        self.return_url: str | None = None


class RedirectNotAllowedError(LinkError):
    def __init__(self) -> None:
        super().__init__(
            "redirect_uri_not_allowed",
            "this redirect URI is not on the connector's allow-list "
            "(CONNECTOR_OAUTH_REDIRECT_URIS); use one of the registered callback URLs",
        )


class ReturnUrlNotAllowedError(LinkError):
    def __init__(self) -> None:
        super().__init__(
            "return_url_not_allowed",
            "this return URL is not on the connector's allow-list (CONNECTOR_LINK_RETURN_URLS); "
            "use one of the configured URLs exactly, or omit it",
        )


class LinkStateError(LinkError):
    """Unknown, replayed, expired or foreign `state`: start the link again."""


class LinkTicketError(LinkError):
    """The ticket a disclosure page carries is forged, malformed or expired."""


class TokenEndpointError(ConnectorError):
    """The token endpoint refused or could not be reached. Never carries a token.

    `error` is the OAuth error code (`invalid_grant`, `invalid_client`, ...) or `unavailable`
    when every attempt failed transiently.
    """

    def __init__(self, error: str, status: int | None, description: str = "") -> None:
        # Descriptions come from Google and name no secrets; keep them short anyway.
        super().__init__(f"token endpoint error {error!r} (HTTP {status}): {description[:200]}")
        self.error = error
        self.status = status

    @property
    def is_invalid_grant(self) -> bool:
        return self.error == "invalid_grant"


class VaultError(ConnectorError):
    """A key ring that cannot be loaded, or a sealed value that cannot be opened."""


# -- inbox ----------------------------------------------------------------------------------


class CompositionError(ConnectorError, ValueError):
    """A message the connector refuses to compose or upload (recipients, attachments, ...)."""


class HeaderInjectionError(CompositionError):
    """A header value carrying a line break, which would let a caller add headers."""


class MessageTooLargeError(CompositionError):
    """The message exceeds Gmail's upload limit for send and drafts."""


class IdempotencyConflictError(ConnectorError):
    """A send with the same Idempotency-Key is in progress (possibly in another process)."""


class IdempotencyMismatchError(ConnectorError):
    """The Idempotency-Key was already used for a request with a different body."""


# -- policy ---------------------------------------------------------------------------------


class RedeliveryInProgressError(ConnectorError):
    """A dead letter another request is redelivering right now (or has redelivered since)."""

    def __init__(self, letter_id: str) -> None:
        super().__init__(f"dead letter {letter_id} is being redelivered")
        self.letter_id = letter_id


class HistoryEntryError(ConnectorError):
    """One `history.list` entry that does not parse; `reason` is a code, never entry content."""

    def __init__(self, entry_id: str, reason: str) -> None:
        super().__init__(f"history entry {entry_id}: {reason}")
        self.entry_id = entry_id
        self.reason = reason


class EvidencePackError(ConnectorError):
    """The evidence pack cannot be written where asked; the message says what to do."""


class PolicyError(ConnectorError):
    """Base of the policy layer's errors."""


class AccessDenied(PolicyError):  # noqa: N818 - the name callers catch, per the gate's contract
    def __init__(self, verdict: Deny, access_id: str | None = None) -> None:
        codes = ", ".join(verdict.reasons)
        super().__init__(f"access denied by rule {verdict.rule}: {codes}")
        self.verdict = verdict
        self.access_id = access_id  # links the caller's error to the audit events

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.verdict.reasons)


class AuditUnavailableError(PolicyError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the audit log could not record this access ({detail}); nothing was returned. "
            "Retry once the audit store is reachable."
        )


class PolicyInputError(PolicyError, ValueError):
    """A consent or access request that cannot be stored as asked."""


class PolicyRecordNotFoundError(PolicyError, LookupError):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"no {kind} {record_id}")
        self.kind = kind
        self.record_id = record_id
