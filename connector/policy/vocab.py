"""Operations and reason codes of the Limited Use policy (closed vocabularies).

Actor kinds, purposes, basis kinds and audit actions live in `audit.vocab` (the audit package
stands alone); this module adds what only the policy needs: what an access *does* (`Operation`)
and why a decision went the way it did (`Reason`).
"""

from __future__ import annotations

from enum import StrEnum

from audit.vocab import FORBIDDEN_PURPOSES, Purpose

ALLOWED_PURPOSES: frozenset[Purpose] = frozenset(Purpose) - FORBIDDEN_PURPOSES


class Operation(StrEnum):
    METADATA_READ = "metadata.read"  # ids, labels, headers, list/search results, profile
    CONTENT_READ = "content.read"  # bodies, full/raw messages, threads
    ATTACHMENT_READ = "attachment.read"
    DRAFT_READ = "draft.read"  # the owner's own drafts (content he wrote, not yet sent)
    DRAFT_WRITE = "draft.write"
    MESSAGE_SEND = "message.send"
    MESSAGE_MODIFY = "message.modify"  # label changes (archive, read, star, spam), trash, untrash
    LABEL_WRITE = "label.write"  # create, rename or delete the owner's own labels
    SETTINGS_READ = "settings.read"  # send-as addresses, signatures, vacation responder
    SETTINGS_WRITE = "settings.write"  # the vacation responder
    AGGREGATE_READ = "aggregate.read"
    AUDIT_READ = "audit.read"
    HISTORY_READ = "history.read"  # the owner's view of who accessed the mailbox and why
    ACCOUNT_LINK = "account.link"
    ACCOUNT_READ = "account.read"  # the owner's own linked accounts and their status
    ACCOUNT_UNLINK = "account.unlink"
    CONSENT_GRANT = "consent.grant"
    CONSENT_REVOKE = "consent.revoke"
    ACCESS_REQUEST_CREATE = "access_request.create"
    ACCESS_REQUEST_DECIDE = "access_request.decide"  # approve or dismiss
    ACCESS_REQUEST_READ = "access_request.read"  # the operators' queue (ids and case text)
    TOKEN_REFRESH = "account.token_refresh"  # the connector renews an account's access token
    VAULT_ROTATE = "vault.rotate"  # the connector re-seals stored secrets under a new key
    RETENTION_RUN = "retention.run"  # the connector drops what it no longer keeps (no mail)
    # Gmail-derived data (the change feed: ids and lifecycle codes) handed to the platform, by
    # webhook, by the polled feed or by its server-sent-events stream.
    TRANSFER = "data.transfer"
    # Telling the platform that an account it knew is gone: the feed's `unlinked` event (account
    # id and kind, no Gmail data), sent after the purge, when TRANSFER's known account is no more.
    ACCOUNT_NOTICE = "account.notice"
    # Webhook upkeep by an admin: list dead letters (ids only), ask for one to be redelivered
    DELIVERY_MANAGE = "delivery.manage"


# Operations that reach mail data of one account (as opposed to audit, aggregates, lifecycle).
MAIL_OPERATIONS: frozenset[Operation] = frozenset(
    {
        Operation.METADATA_READ,
        Operation.CONTENT_READ,
        Operation.ATTACHMENT_READ,
        Operation.DRAFT_READ,
        Operation.DRAFT_WRITE,
        Operation.MESSAGE_SEND,
        Operation.MESSAGE_MODIFY,
        Operation.LABEL_WRITE,
        Operation.SETTINGS_READ,
        Operation.SETTINGS_WRITE,
    }
)


class Reason(StrEnum):
    """Why a decision failed. Stored in audit events, so codes only (no free text)."""

    PURPOSE_FORBIDDEN = "purpose.forbidden"
    PURPOSE_NOT_PERMITTED = "purpose.not_permitted"
    OPERATION_NOT_PERMITTED = "operation.not_permitted"
    ACTOR_NOT_OWNER = "actor.not_owner"
    ACCOUNT_UNKNOWN = "account.unknown"
    ACCOUNT_REQUIRED = "account.required"
    ACCOUNT_SCOPED = "aggregate.account_scoped"
    BASIS_MISSING = "basis.missing"
    BASIS_WRONG_KIND = "basis.wrong_kind"
    BASIS_UNKNOWN = "basis.unknown"
    BASIS_NOT_ALLOWED = "basis.not_allowed"  # a human-access basis where none belongs
    CONSENT_OTHER_ACCOUNT = "consent.other_account"
    CONSENT_NOT_BY_OWNER = "consent.not_by_owner"
    CONSENT_OTHER_GRANTEE = "consent.other_grantee"
    CONSENT_REVOKED = "consent.revoked"
    CONSENT_EXPIRED = "consent.expired"
    CONSENT_NOT_YET_VALID = "consent.not_yet_valid"
    CONSENT_NOT_SPECIFIC = "consent.not_specific"  # mailbox-wide access: consent names messages
    CONSENT_NOT_COVERING = "consent.not_covering"
    APPROVAL_OTHER_ACCOUNT = "approval.other_account"
    APPROVAL_NOT_REQUESTER = "approval.not_requester"
    APPROVAL_PURPOSE_MISMATCH = "approval.purpose_mismatch"
    APPROVAL_PENDING = "approval.pending"
    APPROVAL_DISMISSED = "approval.dismissed"
    APPROVAL_STALE = "approval.stale"  # pending too long: counts as dismissed
    APPROVAL_SELF_APPROVED = "approval.self_approved"
    APPROVAL_EXPIRED = "approval.expired"
    APPROVAL_INCOMPLETE = "approval.incomplete"  # no case reference or no written reason
    APPROVAL_NOT_COVERING = "approval.not_covering"
    APPROVAL_NOT_PENDING = "approval.not_pending"
    APPROVAL_BY_REQUESTER = "approval.by_requester"  # the requester tries to decide his own
    RESOURCE_REQUIRED = "resource.required"
    RESOURCE_UNRESOLVED = "resource.unresolved"  # thread members / message dates not yet known
