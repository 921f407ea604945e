"""The one recorder: the only place that builds audit events and appends them.

Three shapes of event, all fail closed (`AuditUnavailableError` when the append is not durable):

- a gated access writes a DECISION event before Gmail is called and an OUTCOME event before data
  is returned, sharing one `access_id` (`decision`, `outcome`);
- a lifecycle change (link, unlink, consent, approval, token refresh, key rotation) or a read of
  the audit trail writes one EVENT, allowed or refused (`change`).

Callers describe *what* happened (`Access`, `Change`); the recorder decides how that is written,
so an audit field is added in one place.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from audit.event import Actor, AppendReceipt, AuditEvent, Basis, ResourceRef, Source
from audit.sink import AuditSink
from audit.vocab import Action, Decision, Outcome, Phase, Purpose, Severity
from connector.clock import Clock, system_clock
from connector.errors import AuditUnavailableError
from connector.policy.access import Access
from connector.policy.rules import Verdict, severity
from connector.policy.vocab import Operation, Reason

MAX_EVENT_RESOURCES = 1000  # audit.event.MAX_RESOURCES

# The events recorded while serving one request (see `tracking`): the web layer uses it to make
# sure every refused request leaves exactly one refusal in the trail, whichever layer refused.
_TRACKED: ContextVar[list[AuditEvent] | None] = ContextVar("recorded_events", default=None)


class tracking:  # noqa: N801  (used as a function: `with tracking() as events`)
    """Collect the events this task (and what it awaits) appends durably, until exit.

    A class rather than a @contextmanager generator: it runs once per request."""

    __slots__ = ("_token",)

    def __enter__(self) -> list[AuditEvent]:
        events: list[AuditEvent] = []
        self._token = _TRACKED.set(events)
        return events

    def __exit__(self, *_exc: object) -> None:
        _TRACKED.reset(self._token)


def is_refusal(event: AuditEvent) -> bool:
    """The event records a refused or failed attempt (not an allowed step of one)."""
    return event.decision is Decision.DENY or event.outcome in {Outcome.DENIED, Outcome.ERROR}


@dataclass(frozen=True, slots=True)
class Change:
    """A lifecycle change or an audit-trail read: decided once, recorded as one event."""

    actor: Actor
    operation: Operation
    action: Action
    purpose: Purpose | None = Purpose.USER_FEATURE
    account_id: str | None = None
    resources: tuple[ResourceRef, ...] = ()
    basis: Basis | None = None
    request_id: str | None = None
    legal_hold: bool = False
    source: Source = field(default_factory=Source)


class Recorder:
    def __init__(self, sink: AuditSink, clock: Clock = system_clock) -> None:
        self._sink = sink
        self._clock = clock

    async def append(self, event: AuditEvent) -> AppendReceipt:
        """Append durably, or raise `AuditUnavailableError`: the action must not proceed."""
        try:
            receipt = await self._sink.append(event)
        except Exception as exc:  # any failure to record means the action must not proceed
            raise AuditUnavailableError(type(exc).__name__) from exc
        tracked = _TRACKED.get()
        if tracked is not None:
            tracked.append(event)
        return receipt

    # -- gated accesses ---------------------------------------------------------------------

    def _access_event(self, access: Access, **varying: Any) -> AuditEvent:
        """An event of `access`: what its decision and outcome events share, plus `varying`."""
        ctx = access.ctx
        return AuditEvent(
            actor=ctx.actor, action=access.action, account_id=access.account_id,
            purpose=ctx.purpose, basis=access.basis, request_id=ctx.request_id,
            legal_hold=access.legal_hold, source=ctx.source, access_id=access.access_id,
            **varying,
        )  # fmt: skip

    async def decision(
        self, access: Access, verdict: Verdict, *, error: str | None = None
    ) -> AppendReceipt:
        return await self.append(
            self._access_event(
                access,
                decision=Decision.ALLOW if verdict.allowed else Decision.DENY,
                outcome=Outcome.PENDING if verdict.allowed else Outcome.DENIED,
                resources=access.resources[:MAX_EVENT_RESOURCES],
                reasons=tuple(verdict.reasons),
                phase=Phase.DECISION,
                severity=severity(verdict),
                error_code=error,
                time=access.now,
            )
        )

    async def outcome(
        self,
        access: Access,
        *,
        extra: tuple[ResourceRef, ...] = (),
        error: str | None = None,
        denied: tuple[Reason, ...] = (),
    ) -> AppendReceipt:
        if denied:
            decision, outcome = Decision.DENY, Outcome.DENIED
        else:
            decision, outcome = Decision.ALLOW, Outcome.ERROR if error else Outcome.OK
        merged = tuple(dict.fromkeys(access.resources + extra))
        return await self.append(
            self._access_event(
                access,
                decision=decision,
                outcome=outcome,
                resources=merged[:MAX_EVENT_RESOURCES],
                reasons=tuple(denied),
                phase=Phase.OUTCOME,
                severity=Severity.WARNING if denied else Severity.INFO,
                error_code=error,
                time=self._clock(),
            )
        )

    # -- lifecycle changes and audit reads --------------------------------------------------

    async def change(
        self,
        change: Change,
        verdict: Verdict | None = None,
        *,
        reasons: tuple[str, ...] = (),
        failed: bool = False,
        error_code: str | None = None,
    ) -> AppendReceipt:
        """One EVENT: refused (with the verdict's reasons), failed, or done (`reasons` say how)."""
        refused = verdict is not None and not verdict.allowed
        if refused:
            assert verdict is not None
            decision, outcome = Decision.DENY, Outcome.DENIED
            reasons = tuple(verdict.reasons) + reasons
            level = severity(verdict)
        else:
            decision = Decision.ALLOW
            outcome = Outcome.ERROR if failed else Outcome.OK
            level = Severity.WARNING if failed else Severity.INFO
        return await self.append(
            AuditEvent(
                actor=change.actor,
                action=change.action,
                decision=decision,
                outcome=outcome,
                account_id=change.account_id,
                purpose=change.purpose,
                basis=change.basis,
                resources=change.resources[:MAX_EVENT_RESOURCES],
                reasons=reasons,
                severity=level,
                error_code=error_code,
                request_id=change.request_id,
                legal_hold=change.legal_hold,
                source=change.source,
                time=self._clock(),
            )
        )
