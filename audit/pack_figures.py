"""The evidence pack's figures over a period, computed from the audit log alone.

The same function produces the figures a pack carries and recomputes them for `audit
verify-pack`, so "the pack's figures match the log" is an equality of two runs of one
computation. It reads the stored rows in one pass: counts come from the index columns (which
`audit verify` proves agree with each event's body), and only the events a figure lists
(refusals, human accesses, lifecycle events) have their body decoded, which keeps a pass over
a million events within seconds.

Figures (all JSON values, sorted so two runs compare equal):
- `events`: events in the period; `by_purpose_decision`: "purpose/decision" -> count;
- `accesses`: gated Gmail accesses (their decision events) by "purpose/decision";
- `human_accesses`: every operator access decision, with its basis and, for an approved access
  request, who approved it (the approval event may lie before the period);
- `refusals`: every denied or failed-as-denied attempt with its reasons; `forbidden_purpose`:
  the seqs of refusals asked for a purpose Limited Use forbids;
- `needs_relink`: accounts whose last lifecycle event by the period's end says relink;
- `unlinks`: every unlink event, with the seq and hash a deletion receipt names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.encoding import decode_body, format_time
from audit.event import AuditEvent
from audit.records import Row
from audit.store import Store
from audit.vocab import FORBIDDEN_PURPOSES, Action, ActorKind, Decision, Outcome, Phase

CHUNK = 20_000
_LIFECYCLE = frozenset(
    {Action.ACCOUNT_LINKED, Action.ACCOUNT_NEEDS_RELINK, Action.ACCOUNT_UNLINKED}
)
_WANTED = frozenset({a.value for a in (*_LIFECYCLE, Action.ACCESS_REQUEST_APPROVED)})
_HUMAN = '"kind":"operator"'
_DECISION = f'"phase":"{Phase.DECISION.value}"'
_DENIED_OUTCOME = f'"outcome":"{Outcome.DENIED.value}"'


@dataclass(frozen=True, slots=True)
class Period:
    """`since` inclusive, `until` exclusive; None means unbounded."""

    since: datetime | None = None
    until: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "since": None if self.since is None else format_time(self.since),
            "until": None if self.until is None else format_time(self.until),
        }

    def bounds(self) -> tuple[str, str]:
        low = "" if self.since is None else format_time(self.since)
        high = "\uffff" if self.until is None else format_time(self.until)
        return low, high


def _key(purpose: str | None, decision: str) -> str:
    return f"{purpose or '-'}/{decision}"


def _refusal(seq: int, event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": format_time(event.time),
        "actor": f"{event.actor.kind.value}:{event.actor.id}",
        "action": event.action.value,
        "account_id": event.account_id,
        "purpose": None if event.purpose is None else event.purpose.value,
        "reasons": list(event.reasons),
    }


class _Tally:
    def __init__(self, period: Period) -> None:
        self.low, self.high = period.bounds()
        self.events = 0
        self.by_purpose_decision: Counter[str] = Counter()
        self.accesses: Counter[str] = Counter()
        self.human: list[dict[str, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        self.forbidden: list[int] = []
        self.approvers: dict[str, str] = {}  # access request id -> who approved it
        self.lifecycle: dict[str, str] = {}  # account id -> its last lifecycle action
        self.unlinks: list[dict[str, Any]] = []

    def feed(self, row: Row) -> None:
        seq, time, _account, _actor, action, purpose, decision, body = row[:8]
        if time >= self.high:
            return  # after the period (an approval then approves nothing in it)
        if action in _WANTED:
            self._lifecycle(seq, decode_body(body), bytes(row[9]).hex(), time >= self.low)
        if time < self.low:
            return
        self.events += 1
        self.by_purpose_decision[_key(purpose, decision)] += 1
        gmail = action.startswith("gmail.")
        if gmail and _DECISION in body:
            self.accesses[_key(purpose, decision)] += 1
        denied = decision == Decision.DENY.value or _DENIED_OUTCOME in body
        human = gmail and _HUMAN in body and _DECISION in body
        if not (denied or human):
            return
        event = decode_body(body)
        if denied:
            self.refusals.append(_refusal(seq, event))
            if event.purpose in FORBIDDEN_PURPOSES:
                self.forbidden.append(seq)
        if human and event.actor.kind is ActorKind.OPERATOR:
            self.human.append(self._human(seq, event))

    def _lifecycle(self, seq: int, event: AuditEvent, digest: str, in_period: bool) -> None:
        if event.action is Action.ACCESS_REQUEST_APPROVED:
            if event.basis is not None and event.decision is Decision.ALLOW:
                self.approvers[event.basis.id] = event.actor.id
            return
        if event.decision is not Decision.ALLOW or event.account_id is None:
            return
        self.lifecycle[event.account_id] = event.action.value
        if event.action is Action.ACCOUNT_UNLINKED and in_period:
            self.unlinks.append({
                "seq": seq, "hash": digest, "time": format_time(event.time),
                "account_id": event.account_id, "actor": event.actor.id,
            })  # fmt: skip

    def _human(self, seq: int, event: AuditEvent) -> dict[str, Any]:
        basis = event.basis
        return {
            **_refusal(seq, event),
            "decision": event.decision.value,
            "basis": None if basis is None else {"kind": basis.kind.value, "id": basis.id},
            "approver": None if basis is None else self.approvers.get(basis.id),
        }

    def figures(self) -> dict[str, Any]:
        relink = sorted(
            a for a, last in self.lifecycle.items() if last == Action.ACCOUNT_NEEDS_RELINK.value
        )
        return {
            "events": self.events,
            "by_purpose_decision": dict(sorted(self.by_purpose_decision.items())),
            "accesses": dict(sorted(self.accesses.items())),
            "human_accesses": self.human,
            "refusals": self.refusals,
            "forbidden_purpose": self.forbidden,
            "needs_relink": relink,
            "unlinks": self.unlinks,
        }


async def period_figures(
    store: Store, period: Period, *, through_seq: int | None = None
) -> dict[str, Any]:
    """The figures over `period`, reading rows up to `through_seq` (the pack's head) if given,
    so events appended after the pack was made cannot change them."""
    tally = _Tally(period)
    last = through_seq
    async for rows in store.stream_rows(CHUNK):  # read to the end: the scan closes itself
        for row in rows:
            if last is None or row[0] <= last:
                tally.feed(row)
    return tally.figures()
