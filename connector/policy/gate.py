"""The access gate: the only path from any caller to Gmail. It runs plans.

For every `Plan` (see `connector.policy.plans`): resolve the facts behind the basis → `decide()`
→ durably record the DECISION event → on deny raise `AccessDenied` (Gmail untouched) → run the
plan's call on the `MailboxPort` → record the OUTCOME event → only then return data. If the audit
log cannot be written, `AuditUnavailableError` is raised and nothing is returned (fail closed).

Operator reads with a basis need to know exactly which messages they touch. When the policy
answers only `resource.unresolved` (a thread's members, or a message's date under a time-range
approval), the gate asks Gmail for ids and dates alone (the plan's `members`, `format=minimal`),
keeps that answer to itself, lists every resolved id in the decision event, and decides again. A
thread is therefore opened for an operator only if every one of its messages is covered; if the
thread gained a message between the two calls, what was fetched is checked again and withheld
(an OUTCOME event with decision deny) unless the newcomer is covered too.

This module is also the only one that imports the `connector.gmail` client (see `build_gate`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeVar

from audit.event import Basis, ResourceRef
from audit.vocab import Action, ActorKind, BasisKind, ResourceKind
from connector.clock import Clock, system_clock
from connector.errors import AccessDenied, AuditUnavailableError
from connector.policy.access import Access, AccessContext, GateStats, error_code, query_hash
from connector.policy.aggregates import DEFAULT_K, AggregateReport, aggregate
from connector.policy.facts import ApprovalFact, ConsentFact, PolicyRequest
from connector.policy.plans import Plan, members_of, refs
from connector.policy.ports import AccountOwners, BasisFacts, UsageCounter
from connector.policy.recorder import Recorder
from connector.policy.rules import Deny, Verdict, decide
from connector.policy.vocab import Operation, Reason
from connector.ports import ExchangeObserver, MailboxPort

if TYPE_CHECKING:
    import aiohttp
    from sqlalchemy.ext.asyncio import AsyncEngine

    from connector.ports import TokenSource
    from connector.settings import Settings

T = TypeVar("T")


def _bounded(
    query: str, approval: ApprovalFact | None
) -> tuple[str, tuple[datetime, datetime] | None]:
    """An operator lists only inside the approved time range; Gmail's own filter enforces it."""
    if approval is None or approval.time_from is None or approval.time_to is None:
        return query, None  # no range approved: the policy refuses a mailbox-wide listing
    start, end = approval.time_from, approval.time_to
    bounded = f"{query} after:{int(start.timestamp())} before:{int(end.timestamp())}".strip()
    return bounded, (start, end)


class Gate:
    """Policy + audit + Gmail, combined in one place. See the module docstring for the flow."""

    def __init__(
        self,
        mailbox: MailboxPort,
        recorder: Recorder,
        owners: AccountOwners,
        facts: BasisFacts,
        usage: UsageCounter,
        *,
        hash_key: bytes,
        clock: Clock = system_clock,
        aggregate_k: int = DEFAULT_K,
    ) -> None:
        if not hash_key:
            # An unkeyed hash of a search query can be reversed by guessing; refuse to run.
            raise ValueError("the gate needs a hash key (CONNECTOR_AUDIT_HASH_KEY)")
        self._mailbox = mailbox
        self._recorder = recorder
        self._owners = owners
        self._facts = facts
        self._usage = usage
        self._key = hash_key
        self._clock = clock
        self._k = aggregate_k
        self.stats = GateStats()

    # -- running a plan ---------------------------------------------------------------------

    async def run(self, ctx: AccessContext, plan: Plan[T]) -> T:
        """Decide, record, call Gmail, record, return: the whole flow for one plan."""
        access, req, query = await self._open(ctx, plan)
        try:
            with quota_priority(ctx):
                result = await plan.call(self._mailbox, query)
        except Exception as exc:
            await self._finish(access, plan, exc=exc)
            raise
        if plan.fetched is not None and plan.basis is not None:
            await self._recheck(access, plan, req, result)
        await self._finish(access, plan, extra=plan.result_refs(result))
        return result

    async def stream(
        self, ctx: AccessContext, plan: Plan[AsyncIterator[bytes]]
    ) -> AsyncIterator[bytes]:
        """Decide, record, and start the download; return the bytes as an async iterator.

        The OUTCOME event is written once Gmail has delivered the first chunk, before any byte
        reaches the caller; a failure later in the stream appends a second OUTCOME (error).
        """
        access, _, query = await self._open(ctx, plan)
        try:
            chunks = await plan.call(self._mailbox, query)
            first = await anext(chunks, b"")
        except Exception as exc:
            await self._finish(access, plan, exc=exc)
            raise
        await self._finish(access, plan)
        return self._rest(access, first, chunks)

    async def aggregates(self, ctx: AccessContext, start: date, end: date) -> AggregateReport:
        """Per-day, per-operation totals across accounts; groups under k accounts withheld."""
        now = self._clock()
        req = PolicyRequest(ctx.actor, Operation.AGGREGATE_READ, ctx.purpose, now)
        access = Access(ctx, Action.AGGREGATE_READ, None, None, (), False, now, _access_id())
        await self._decided(access, decide(req))
        try:
            report = aggregate(await self._usage.counts(start, end), self._k)
        except Exception as exc:
            self.stats.gmail_errors += 1
            await self._recorded(self._recorder.outcome(access, error=error_code(exc)))
            raise
        await self._recorded(self._recorder.outcome(access))
        return report

    # -- the steps --------------------------------------------------------------------------

    async def _basis_facts(
        self, basis: Basis | None
    ) -> tuple[ConsentFact | None, ApprovalFact | None]:
        if basis is None:
            return None, None
        if basis.kind is BasisKind.CONSENT:
            return await self._facts.consent(basis.id), None
        return None, await self._facts.approval(basis.id)

    async def _open(
        self, ctx: AccessContext, plan: Plan[T]
    ) -> tuple[Access, PolicyRequest, str | None]:
        """Decide and durably record the decision; raise `AccessDenied` on deny."""
        now = self._clock()
        owner = await self._owners.owner_of(plan.account_id)
        consent, approval = await self._basis_facts(plan.basis)
        resources, query, window = plan.resources, plan.query, None
        if query is not None:
            if ctx.actor.kind is ActorKind.OPERATOR:
                query, window = _bounded(query, approval)
            if query:
                resources = (*resources, query_hash(self._key, query))
        req = PolicyRequest(
            ctx.actor, plan.operation, ctx.purpose, now, account_id=plan.account_id,
            account_owner=owner, message_ids=plan.message_ids, mailbox_wide=plan.mailbox_wide,
            resolved=plan.resolved, window=window, basis=plan.basis, consent=consent,
            approval=approval, support_case=ctx.support_case,
        )  # fmt: skip
        legal_hold = approval is not None and approval.legal_hold
        access = Access(
            ctx, plan.action, plan.account_id, plan.basis, resources, legal_hold, now,
            _access_id(),
        )  # fmt: skip
        verdict = decide(req)
        if verdict.reasons == (Reason.RESOURCE_UNRESOLVED,) and plan.members is not None:
            try:
                ids, times = members_of(await plan.members(self._mailbox))
            except Exception as exc:
                await self._decided(access, verdict, error=error_code(exc))
                raise
            req = replace(
                req, message_ids=req.message_ids | ids, message_times=times, resolved=True
            )
            new = sorted(ids - plan.message_ids)
            access = replace(access, resources=access.resources + refs(ResourceKind.MESSAGE, new))
            verdict = decide(req)
        await self._decided(access, verdict)
        if isinstance(verdict, Deny):
            raise AccessDenied(verdict, access.access_id)
        return access, req, (query or None)

    async def _recheck(self, access: Access, plan: Plan[T], req: PolicyRequest, result: T) -> None:
        """A thread that grew after the decision is decided again on what was fetched."""
        assert plan.fetched is not None
        ids, times = members_of(plan.fetched(result))
        if ids <= req.message_ids:
            return
        verdict = decide(replace(req, message_ids=ids, message_times=times, resolved=True))
        if isinstance(verdict, Deny):
            await self._count(access, plan, error=True)
            outcome = self._recorder.outcome(
                access, extra=plan.result_refs(result), denied=verdict.reasons
            )
            await self._recorded(outcome)
            raise AccessDenied(verdict, access.access_id)

    async def _decided(self, access: Access, verdict: Verdict, *, error: str | None = None) -> None:
        self.stats.decisions += 1
        if verdict.allowed:
            self.stats.allowed += 1
        else:
            self.stats.denied += 1
            if Reason.PURPOSE_FORBIDDEN in verdict.reasons:
                self.stats.policy_violations += 1
        await self._recorded(self._recorder.decision(access, verdict, error=error))

    async def _recorded(self, append: Awaitable[object]) -> None:
        """Await an append, counting the failures the metrics report."""
        try:
            await append
        except AuditUnavailableError:
            self.stats.audit_failures += 1
            raise

    async def _finish(
        self,
        access: Access,
        plan: Plan[T],
        *,
        extra: tuple[ResourceRef, ...] = (),
        exc: BaseException | None = None,
    ) -> None:
        if exc is not None:
            self.stats.gmail_errors += 1
        if plan.counted:
            await self._count(access, plan, error=exc is not None)
        code = None if exc is None else error_code(exc)
        await self._recorded(self._recorder.outcome(access, extra=extra, error=code))

    async def _count(self, access: Access, plan: Plan[T], *, error: bool) -> None:
        try:
            await self._usage.increment(
                plan.account_id, access.now.date(), plan.operation.value, error=error
            )
        except Exception:  # counters feed statistics, not evidence: never block an access on them
            self.stats.usage_errors += 1

    async def _rest(
        self, access: Access, first: bytes, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        if first:
            yield first
        try:
            async for chunk in chunks:
                yield chunk
        except Exception as exc:
            self.stats.gmail_errors += 1
            await self._recorded(self._recorder.outcome(access, error=error_code(exc)))
            raise


_AS_IS: AbstractContextManager[None] = nullcontext()  # reusable: it holds no state


def quota_priority(ctx: AccessContext) -> AbstractContextManager[None]:
    """The connector's own calls (sync, watch renewal) yield the shared Gmail quota to users."""
    if ctx.actor.kind is not ActorKind.SERVICE:
        return _AS_IS
    from connector.gmail.quota_shared import background

    return background()


def _access_id() -> str:
    # 128 random bits as 32 hex digits, the shape of uuid4().hex at a fifth of its cost
    return os.urandom(16).hex()


def build_gate(
    settings: Settings,
    *,
    recorder: Recorder,
    owners: AccountOwners,
    facts: BasisFacts,
    usage: UsageCounter,
    token_source: TokenSource,
    session: aiohttp.ClientSession,
    clock: Clock = system_clock,
    observe: ExchangeObserver | None = None,
    engine: AsyncEngine | None = None,
) -> Gate:
    """The gate over the real Gmail client (Google or the emulator, by `gmail_api_endpoint`);
    with `engine` and GMAIL_QUOTA_SHARED, its quota is shared with every instance."""
    from connector.gmail import GmailClient, QuotaPolicy
    from connector.gmail.quota_shared import shared_quotas

    quota = QuotaPolicy.for_regime(
        settings.gmail_quota_regime,
        max_concurrency_per_user=settings.gmail_max_concurrency_per_user,
        shares=1 if settings.gmail_quota_shared else settings.workers,
        max_wait_seconds=settings.gmail_max_queue_wait_seconds,
    )
    client = GmailClient(
        settings.gmail_api_endpoint, token_source, session, quota=quota, observe=observe
    )
    for shared, bucket_of in shared_quotas(engine, settings, clock) if engine else ():
        client.budget.share(shared, bucket_of)
    return Gate(
        client, recorder, owners, facts, usage,
        hash_key=settings.audit_hash_key.encode("utf-8"), clock=clock,
        aggregate_k=settings.aggregate_k,
    )  # fmt: skip
