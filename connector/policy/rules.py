"""The Limited Use rules as frozen objects, and `decide()`: pure, deny by default.

A `Grant` names who (actor kind) may do what (operations) for which purposes, and the conditions
that must hold. Nothing is allowed unless some grant matches and all its conditions pass. Forbidden
purposes appear in no grant and are additionally refused by an explicit prohibition, so no
configuration can enable them. A denial carries every reason it failed, not just the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from audit.vocab import FORBIDDEN_PURPOSES, ActorKind, BasisKind, Purpose, Severity
from connector.policy.facts import (
    ApprovalFact,
    ApprovalStatus,
    ConsentFact,
    GranteeKind,
    PolicyRequest,
)
from connector.policy.vocab import Operation, Reason

PROHIBITION_RULE = "prohibition.forbidden_purpose"
DEFAULT_RULE = "default.deny"


@dataclass(frozen=True, slots=True)
class Allow:
    rule: str  # the grant that allowed it

    @property
    def allowed(self) -> bool:
        return True

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Deny:
    rule: str  # the grant whose conditions failed, the prohibition, or the default
    reasons: tuple[Reason, ...]

    @property
    def allowed(self) -> bool:
        return False


Verdict = Allow | Deny


class Condition(Protocol):
    def check(self, req: PolicyRequest) -> tuple[Reason, ...]: ...


@dataclass(frozen=True, slots=True)
class OwnsAccount:
    """The actor is the owner of the account. `allow_unnamed`: the operation may name no
    account (a new link, the list of one's accounts). `allow_unclaimed`: nobody owns the named
    account yet (linking)."""

    allow_unclaimed: bool = False
    allow_unnamed: bool = False

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        if req.account_id is None:
            return () if self.allow_unnamed else (Reason.ACCOUNT_REQUIRED,)
        if req.account_owner is None:
            return () if self.allow_unclaimed else (Reason.ACCOUNT_UNKNOWN,)
        return () if req.account_owner == req.actor.id else (Reason.ACTOR_NOT_OWNER,)


@dataclass(frozen=True, slots=True)
class KnownAccount:
    """The account exists (automated work serves an owner); `allow_unnamed`: none is named."""

    allow_unnamed: bool = False

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        if req.account_id is None:
            return () if self.allow_unnamed else (Reason.ACCOUNT_REQUIRED,)
        return () if req.account_owner is not None else (Reason.ACCOUNT_UNKNOWN,)


@dataclass(frozen=True, slots=True)
class NamesAccount:
    """Upkeep of one account (a token refresh) must say which account it touches."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        return () if req.account_id is not None else (Reason.ACCOUNT_REQUIRED,)


@dataclass(frozen=True, slots=True)
class NoAccount:
    """Aggregates are computed across accounts; asking for one account would identify it."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        return () if req.account_id is None else (Reason.ACCOUNT_SCOPED,)


@dataclass(frozen=True, slots=True)
class NoHumanBasis:
    """A consent or approval is a basis for human access; elsewhere it signals a mix-up."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        return () if req.basis is None else (Reason.BASIS_NOT_ALLOWED,)


def _basis_reasons(req: PolicyRequest, kind: BasisKind) -> tuple[Reason, ...]:
    if req.basis is None:
        return (Reason.BASIS_MISSING,)
    if req.basis.kind is not kind:
        return (Reason.BASIS_WRONG_KIND,)
    fact: ConsentFact | ApprovalFact | None = (
        req.consent if kind is BasisKind.CONSENT else req.approval
    )
    if fact is None or fact.id != req.basis.id:
        return (Reason.BASIS_UNKNOWN,)
    return ()


def _needs_named_messages(req: PolicyRequest) -> tuple[Reason, ...]:
    if not req.resolved:
        return (Reason.RESOURCE_UNRESOLVED,)
    return () if req.message_ids else (Reason.RESOURCE_REQUIRED,)


@dataclass(frozen=True, slots=True)
class ConsentCovers:
    """An active owner's consent names this grantee and every message touched."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        basis = _basis_reasons(req, BasisKind.CONSENT)
        if basis:
            return basis
        consent = req.consent
        assert consent is not None  # guaranteed by _basis_reasons
        out: list[Reason] = []
        if consent.account_id != req.account_id:
            out.append(Reason.CONSENT_OTHER_ACCOUNT)
        if req.account_owner is None or consent.granted_by != req.account_owner:
            out.append(Reason.CONSENT_NOT_BY_OWNER)
        if consent.grantee_kind is GranteeKind.OPERATOR:
            grantee_ok = consent.grantee_id == req.actor.id
        else:
            grantee_ok = consent.grantee_id == req.support_case
        if not grantee_ok:
            out.append(Reason.CONSENT_OTHER_GRANTEE)
        if consent.revoked_at is not None and consent.revoked_at <= req.now:
            out.append(Reason.CONSENT_REVOKED)
        if req.now >= consent.expires_at:
            out.append(Reason.CONSENT_EXPIRED)
        if req.now < consent.created_at:
            out.append(Reason.CONSENT_NOT_YET_VALID)
        if req.mailbox_wide:
            out.append(Reason.CONSENT_NOT_SPECIFIC)
        else:
            out.extend(_needs_named_messages(req))
        if not req.message_ids <= consent.message_ids:
            out.append(Reason.CONSENT_NOT_COVERING)
        return tuple(out)


def _approval_state(approval: ApprovalFact, req: PolicyRequest) -> list[Reason]:
    status = approval.effective_status(req.now)
    if status is ApprovalStatus.PENDING:
        return [Reason.APPROVAL_PENDING]
    if status is ApprovalStatus.STALE:
        return [Reason.APPROVAL_STALE]
    if status is ApprovalStatus.DISMISSED:
        return [Reason.APPROVAL_DISMISSED]
    out: list[Reason] = []
    if approval.decided_by is None or approval.decided_by == approval.requester_id:
        out.append(Reason.APPROVAL_SELF_APPROVED)
    if approval.expires_at is None or req.now >= approval.expires_at:
        out.append(Reason.APPROVAL_EXPIRED)
    return out


def _approval_coverage(approval: ApprovalFact, req: PolicyRequest) -> list[Reason]:
    if req.mailbox_wide:
        window = req.window
        inside = (
            window is not None
            and approval.time_from is not None
            and approval.time_to is not None
            and approval.time_from <= window[0] <= window[1] <= approval.time_to
        )
        return [] if inside else [Reason.APPROVAL_NOT_COVERING]
    out = list(_needs_named_messages(req))
    for message_id in req.message_ids - approval.message_ids:
        when = req.message_times.get(message_id)
        if when is None and approval.time_from is not None:
            reason = Reason.RESOURCE_UNRESOLVED  # the gate may look the date up and ask again
        elif when is None or not approval.covers_time(when):
            reason = Reason.APPROVAL_NOT_COVERING
        else:
            continue
        if reason not in out:
            out.append(reason)
    return out


def _approval_reasons(
    req: PolicyRequest, wrong_actor: Callable[[ApprovalFact, PolicyRequest], bool], actor: Reason
) -> tuple[ApprovalFact | None, list[Reason]]:
    """What both approval conditions check first: the basis, the account, who acts, the purpose,
    and that the request carries a case reference and a written reason."""
    basis = _basis_reasons(req, BasisKind.ACCESS_REQUEST)
    if basis:
        return None, list(basis)
    approval = req.approval
    assert approval is not None  # guaranteed by _basis_reasons
    out: list[Reason] = []
    if approval.account_id != req.account_id:
        out.append(Reason.APPROVAL_OTHER_ACCOUNT)
    if wrong_actor(approval, req):
        out.append(actor)
    if approval.purpose is not req.purpose:
        out.append(Reason.APPROVAL_PURPOSE_MISMATCH)
    if not (approval.has_case_reference and approval.has_reason):
        out.append(Reason.APPROVAL_INCOMPLETE)
    return approval, out


@dataclass(frozen=True, slots=True)
class ApprovalCovers:
    """A request by this operator, approved by another, unexpired, covering what is touched."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        approval, out = _approval_reasons(
            req, lambda a, r: a.requester_id != r.actor.id, Reason.APPROVAL_NOT_REQUESTER
        )
        if approval is not None:
            out.extend(_approval_state(approval, req))
            out.extend(_approval_coverage(approval, req))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ApprovalDecidable:
    """A pending, complete request that someone other than its requester decides."""

    def check(self, req: PolicyRequest) -> tuple[Reason, ...]:
        approval, out = _approval_reasons(
            req, lambda a, r: a.requester_id == r.actor.id, Reason.APPROVAL_BY_REQUESTER
        )
        if approval is not None:
            status = approval.effective_status(req.now)
            if status is ApprovalStatus.STALE:
                out.append(Reason.APPROVAL_STALE)
            elif status is not ApprovalStatus.PENDING:
                out.append(Reason.APPROVAL_NOT_PENDING)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Grant:
    name: str
    actor: ActorKind
    operations: frozenset[Operation]
    purposes: frozenset[Purpose]
    conditions: tuple[Condition, ...]

    def failures(self, req: PolicyRequest) -> list[Reason]:
        out: list[Reason] = []
        for condition in self.conditions:
            out.extend(condition.check(req))
        return out


_O = Operation
_HUMAN_READ = frozenset({_O.METADATA_READ, _O.CONTENT_READ, _O.ATTACHMENT_READ})
# The owner's own changes; a human with a basis reads (_HUMAN_READ) and never gets these.
_OWN_WRITES = frozenset({_O.DRAFT_READ, _O.DRAFT_WRITE, _O.MESSAGE_SEND, _O.MESSAGE_MODIFY,
                         _O.LABEL_WRITE, _O.SETTINGS_READ, _O.SETTINGS_WRITE})  # fmt: skip
# Everything the owner does with their own mailbox; TRANSFER: their change feed (polled, streamed).
_OWNER = frozenset({*_HUMAN_READ, *_OWN_WRITES, _O.HISTORY_READ, _O.ACCOUNT_UNLINK,
                    _O.CONSENT_GRANT, _O.CONSENT_REVOKE, _O.TRANSFER})  # fmt: skip
_CASEWORK = frozenset({Purpose.SECURITY, Purpose.LEGAL})
_FEATURE = frozenset({Purpose.USER_FEATURE})

_RETENTION = Grant("system.retention", ActorKind.SYSTEM, frozenset({_O.RETENTION_RUN}),
                   _FEATURE, (NoAccount(), NoHumanBasis()))  # fmt: skip
# Retention unlinks an account after its dormant notice period (revoke, purge, receipt).
_DORMANT = Grant("system.dormant_unlink", ActorKind.SYSTEM, frozenset({_O.ACCOUNT_UNLINK}),
                 _FEATURE, (KnownAccount(), NoHumanBasis()))  # fmt: skip
_VAULT = Grant("system.vault_rotation", ActorKind.SYSTEM, frozenset({_O.VAULT_ROTATE}),
               _FEATURE, (NoAccount(), NoHumanBasis()))  # fmt: skip
# The webhook's `unlinked` event: the account is purged (unknown), so only its id is required.
_GONE = Grant("service.unlinked_notice", ActorKind.SERVICE, frozenset({_O.ACCOUNT_NOTICE}),
              _FEATURE, (NamesAccount(), NoHumanBasis()))  # fmt: skip
_ADMIN = Grant("admin.delivery", ActorKind.ADMIN, frozenset({_O.DELIVERY_MANAGE}), _FEATURE,
               (KnownAccount(allow_unnamed=True), NoHumanBasis()))  # fmt: skip
GRANTS: tuple[Grant, ...] = (
    Grant(
        "user.own_mailbox",
        ActorKind.USER,
        _OWNER,
        _FEATURE,
        (OwnsAccount(), NoHumanBasis()),
    ),
    Grant(
        "user.link",
        ActorKind.USER,
        frozenset({_O.ACCOUNT_LINK}),
        _FEATURE,
        (OwnsAccount(allow_unclaimed=True, allow_unnamed=True), NoHumanBasis()),
    ),
    Grant(
        "user.own_accounts",
        ActorKind.USER,
        frozenset({_O.ACCOUNT_READ}),
        _FEATURE,
        (OwnsAccount(allow_unnamed=True), NoHumanBasis()),
    ),
    Grant(
        "service.owner_features",
        ActorKind.SERVICE,
        frozenset({_O.METADATA_READ, _O.CONTENT_READ, _O.TRANSFER}),  # sync; webhook delivery
        _FEATURE,
        (KnownAccount(), NoHumanBasis()),
    ),
    Grant(
        "operator.consented_support",
        ActorKind.OPERATOR,
        _HUMAN_READ,
        frozenset({Purpose.CONSENTED_SUPPORT}),
        (ConsentCovers(),),
    ),
    Grant(
        "operator.approved_access",
        ActorKind.OPERATOR,
        _HUMAN_READ,
        _CASEWORK,
        (ApprovalCovers(),),
    ),
    Grant(
        "operator.aggregates",
        ActorKind.OPERATOR,
        frozenset({_O.AGGREGATE_READ}),
        frozenset({Purpose.AGGREGATE_OPS}),
        (NoAccount(), NoHumanBasis()),
    ),
    Grant(
        "operator.request_access",
        ActorKind.OPERATOR,
        frozenset({_O.ACCESS_REQUEST_CREATE}),
        _CASEWORK,
        (KnownAccount(), NoHumanBasis()),
    ),
    Grant(
        "operator.access_queue",
        ActorKind.OPERATOR,
        frozenset({_O.ACCESS_REQUEST_READ}),
        _CASEWORK,
        (NoHumanBasis(),),
    ),
    Grant(
        "operator.decide_access",
        ActorKind.OPERATOR,
        frozenset({_O.ACCESS_REQUEST_DECIDE}),
        _CASEWORK,
        (ApprovalDecidable(),),
    ),
    # The connector's own upkeep: it reads no mail, so the owner's feature is the only purpose.
    Grant(
        "system.token_upkeep",
        ActorKind.SYSTEM,
        frozenset({_O.TOKEN_REFRESH}),
        _FEATURE,
        (NamesAccount(), NoHumanBasis()),
    ),
    _VAULT,
    _RETENTION,
    _DORMANT,
    _ADMIN,
    _GONE,
    Grant(
        "reviewer.audit",
        ActorKind.REVIEWER,
        frozenset({_O.AUDIT_READ}),
        _CASEWORK,
        (NoHumanBasis(),),
    ),
)

_BY_ACTOR: dict[ActorKind, tuple[Grant, ...]] = {
    kind: tuple(g for g in GRANTS if g.actor is kind) for kind in ActorKind
}


def _dedupe(reasons: list[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


def decide(req: PolicyRequest) -> Verdict:
    """Allow only what a grant permits; otherwise deny with every reason and the deciding rule."""
    forbidden = req.purpose in FORBIDDEN_PURPOSES
    reasons: list[Reason] = [Reason.PURPOSE_FORBIDDEN] if forbidden else []
    grants = _BY_ACTOR[req.actor.kind]  # every actor kind has at least one grant
    by_operation = [g for g in grants if req.operation in g.operations]
    if not by_operation:
        reasons.append(Reason.OPERATION_NOT_PERMITTED)
    candidates = [g for g in by_operation if req.purpose in g.purposes]
    if by_operation and not candidates and not forbidden:
        reasons.append(Reason.PURPOSE_NOT_PERMITTED)
    # Evaluate the closest grants even when the purpose is wrong, so the denial lists every
    # other problem too (a forbidden purpose on someone else's mailbox names both).
    for grant in candidates or by_operation:
        failures = grant.failures(req)
        if not failures and candidates and not forbidden:
            return Allow(grant.name)
        reasons.extend(failures)
    if forbidden:
        rule = PROHIBITION_RULE
    elif candidates:
        rule = candidates[0].name
    else:
        rule = DEFAULT_RULE
    return Deny(rule, _dedupe(reasons))


def may_attempt(kind: ActorKind, operation: Operation, purposes: frozenset[Purpose]) -> Verdict:
    """Whether some grant lets this kind of actor attempt `operation` for one of `purposes`.

    The question a route asks before the facts (account owner, basis, messages) are known: a
    reviewer on a mail route, an operator on an owner route. `decide()` still rules on the full
    request; this only refuses what no facts could make allowed.
    """
    grants = _BY_ACTOR[kind]
    by_operation = [g for g in grants if operation in g.operations]
    if not by_operation:
        return Deny(DEFAULT_RULE, (Reason.OPERATION_NOT_PERMITTED,))
    fitting = [g for g in by_operation if g.purposes & purposes]
    if not fitting:
        return Deny(DEFAULT_RULE, (Reason.PURPOSE_NOT_PERMITTED,))
    return Allow(fitting[0].name)


def severity(verdict: Verdict) -> Severity:
    """Forbidden purposes and cross-account attempts are violations; other denials warnings."""
    if verdict.allowed:
        return Severity.INFO
    if Reason.PURPOSE_FORBIDDEN in verdict.reasons or Reason.ACTOR_NOT_OWNER in verdict.reasons:
        return Severity.HIGH
    return Severity.WARNING
