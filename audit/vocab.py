"""Closed vocabularies recorded in the audit log.

They live in `audit` (not `connector`) because the audit package stands alone: a reviewer can
verify and query a log without the service installed. `connector.policy` imports these.
"""

from __future__ import annotations

from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"  # the mailbox owner, acting through the platform
    SERVICE = "service"  # automated processing for the owner's own features (e.g. sync)
    OPERATOR = "operator"  # a human staff member
    REVIEWER = "reviewer"  # security reviewer: audit metadata only
    ADMIN = "admin"  # configuration; never mail content
    SYSTEM = "system"  # the connector itself (key rotation, checkpoints, CLI)


class Purpose(StrEnum):
    USER_FEATURE = "user_feature"
    CONSENTED_SUPPORT = "consented_support"
    SECURITY = "security"
    LEGAL = "legal"
    AGGREGATE_OPS = "aggregate_ops"
    # Forbidden by Limited Use: present only so that attempts can be refused and recorded.
    ADVERTISING = "advertising"
    MARKETING = "marketing"
    MODEL_TRAINING = "model_training"
    DATA_SALE = "data_sale"
    CREDIT_LENDING = "credit_lending"


FORBIDDEN_PURPOSES: frozenset[Purpose] = frozenset(
    {
        Purpose.ADVERTISING,
        Purpose.MARKETING,
        Purpose.MODEL_TRAINING,
        Purpose.DATA_SALE,
        Purpose.CREDIT_LENDING,
    }
)


class Action(StrEnum):
    """What happened. `<domain>.<subject>.<verb>`, like warehouse's security events."""

    # Gmail data access (through the gate)
    GMAIL_PROFILE_READ = "gmail.profile.read"
    GMAIL_LABEL_LIST = "gmail.label.list"
    GMAIL_MESSAGE_LIST = "gmail.message.list"
    GMAIL_MESSAGE_READ = "gmail.message.read"
    GMAIL_METADATA_READ = "gmail.metadata.read"
    GMAIL_THREAD_READ = "gmail.thread.read"
    GMAIL_ATTACHMENT_READ = "gmail.attachment.read"
    GMAIL_DRAFT_LIST = "gmail.draft.list"
    GMAIL_DRAFT_READ = "gmail.draft.read"
    GMAIL_DRAFT_CREATE = "gmail.draft.create"
    GMAIL_DRAFT_UPDATE = "gmail.draft.update"
    GMAIL_DRAFT_DELETE = "gmail.draft.delete"
    GMAIL_DRAFT_SEND = "gmail.draft.send"
    GMAIL_MESSAGE_SEND = "gmail.message.send"
    # A client's retry of a send already made (same Idempotency-Key): answered, not sent again.
    GMAIL_MESSAGE_SEND_REPLAYED = "gmail.message.send_replayed"
    # A retry of a draft create already made (same Idempotency-Key): answered, no second draft.
    GMAIL_DRAFT_CREATE_REPLAYED = "gmail.draft.create_replayed"
    GMAIL_MESSAGE_MODIFY = "gmail.message.modify"
    # Organizing the owner's mail (labels, archive, read, star, spam, trash; never a delete)
    GMAIL_MESSAGE_BATCH_MODIFY = "gmail.message.batch_modify"
    GMAIL_MESSAGE_TRASH = "gmail.message.trash"
    GMAIL_MESSAGE_UNTRASH = "gmail.message.untrash"
    GMAIL_THREAD_LIST = "gmail.thread.list"
    GMAIL_THREAD_MODIFY = "gmail.thread.modify"
    GMAIL_THREAD_TRASH = "gmail.thread.trash"
    GMAIL_THREAD_UNTRASH = "gmail.thread.untrash"
    GMAIL_LABEL_CREATE = "gmail.label.create"
    GMAIL_LABEL_UPDATE = "gmail.label.update"
    GMAIL_LABEL_DELETE = "gmail.label.delete"
    # Mail settings the client shows (send-as addresses and signatures, vacation responder)
    GMAIL_SEND_AS_LIST = "gmail.send_as.list"
    GMAIL_VACATION_READ = "gmail.vacation.read"
    GMAIL_VACATION_UPDATE = "gmail.vacation.update"
    GMAIL_SYNC = "gmail.sync"
    GMAIL_WATCH = "gmail.watch"  # push notices to the deployment's Pub/Sub topic set or renewed
    GMAIL_WATCH_STOP = "gmail.watch.stop"
    # Aggregates for internal operations
    AGGREGATE_READ = "aggregate.read"
    # Human access basis
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REVOKED = "consent.revoked"
    CONSENT_LISTED = "consent.listed"
    ACCESS_REQUEST_CREATED = "access_request.created"
    ACCESS_REQUEST_APPROVED = "access_request.approved"
    ACCESS_REQUEST_DISMISSED = "access_request.dismissed"
    # Account lifecycle
    ACCOUNT_LINK_STARTED = "account.link.started"
    ACCOUNT_LINKED = "account.linked"
    ACCOUNT_LINK_FAILED = "account.link.failed"
    ACCOUNT_SCOPES_GRANTED = "account.scopes.granted"
    ACCOUNT_TOKEN_REFRESHED = "account.token.refreshed"
    ACCOUNT_REFRESH_FAILED = "account.refresh.failed"
    ACCOUNT_NEEDS_RELINK = "account.needs_relink"
    ACCOUNT_UNLINKED = "account.unlinked"
    ACCOUNT_TOKEN_REVOKE_FAILED = "account.token.revoke_failed"
    ACCOUNT_DATA_EXPORTED = "account.data.exported"
    ACCOUNT_HISTORY_READ = "account.history.read"
    # The owner's change feed leaving the connector (TRANSFER): one page read, one stream opened
    ACCOUNT_CHANGES_READ = "account.changes.read"
    ACCOUNT_CHANGES_STREAMED = "account.changes.streamed"
    # The change feed pushed to the platform's webhook (TRANSFER): each attempt is decided and
    # recorded before the POST, then its outcome; a change given up on is dead-lettered
    WEBHOOK_SENDING = "webhook.delivery.sending"
    WEBHOOK_DELIVERED = "webhook.delivery.delivered"
    WEBHOOK_FAILED = "webhook.delivery.failed"
    WEBHOOK_DEAD_LETTERED = "webhook.delivery.dead_lettered"
    # An admin lists the dead letters (ids only) or asks for one to be delivered again
    WEBHOOK_DEAD_LETTERS_LISTED = "webhook.dead_letters.listed"
    WEBHOOK_REDELIVERY_REQUESTED = "webhook.redelivery.requested"
    VAULT_KEY_ROTATED = "vault.key.rotated"
    # A retention run: expired consents and approvals removed, dormant accounts given notice
    RETENTION_RUN = "retention.run"
    # A request refused before any finer decision (role not permitted on the route, bad input)
    API_REQUEST_REFUSED = "api.request.refused"
    # The audit trail itself
    AUDIT_QUERIED = "audit.queried"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_VERIFIED = "audit.verified"


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Phase(StrEnum):
    """A gated access writes two events sharing one `access_id`: the decision, then the outcome."""

    DECISION = "decision"
    OUTCOME = "outcome"
    EVENT = "event"  # a state change recorded once (consent granted, account linked, ...)


class Outcome(StrEnum):
    PENDING = "pending"  # decision recorded, Gmail not yet called
    OK = "ok"
    DENIED = "denied"
    ERROR = "error"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"  # policy violations: forbidden purposes, cross-account attempts


class ResourceKind(StrEnum):
    ACCOUNT = "account"
    MESSAGE = "message"
    THREAD = "thread"
    DRAFT = "draft"
    ATTACHMENT = "attachment"
    LABEL = "label"
    CONSENT = "consent"
    ACCESS_REQUEST = "access_request"
    AUDIT_RANGE = "audit_range"
    QUERY = "query"  # a keyed hash of a search query, never the query text


class BasisKind(StrEnum):
    CONSENT = "consent"
    ACCESS_REQUEST = "access_request"
