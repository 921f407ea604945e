"""The access gate: the only path from any caller to Gmail.

Every call: resolve the facts behind the basis → `decide()` → durably append the DECISION event
→ on deny raise `AccessDenied` (Gmail untouched) → call the `MailboxPort` → append the OUTCOME
event → only then return data. If the audit log cannot be written, `AuditUnavailableError` is
raised and nothing is returned (fail closed).

Operator reads with a basis need to know exactly which messages they touch. When the policy
answers only `resource.unresolved` (a thread's members, or a message's date under a time-range
approval), the gate asks Gmail for ids and dates alone (`format=minimal`), keeps that answer to
itself, lists every resolved id in the decision event, and decides again. A thread is therefore
opened for an operator only if every one of its messages is covered; if the thread gains a
message between the two calls, the fetched thread is checked again and withheld (an OUTCOME
event with decision deny) unless the newcomer is covered too.

This module is also the only one that imports `connector.gmail` (see `build_gate`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from audit.event import Basis, ResourceRef
from audit.sink import AuditSink
from audit.vocab import Action, ActorKind, BasisKind, ResourceKind
from connector.policy.access import (
    Access,
    AccessContext,
    GateStats,
    error_code,
    query_hash,
)
from connector.policy.aggregates import DEFAULT_K, AggregateReport, aggregate
from connector.errors import AccessDenied, AuditUnavailableError, PolicyInputError
from connector.policy.facts import ApprovalFact, ConsentFact, PolicyRequest
from connector.policy.ports import AccountOwners, BasisFacts, UsageCounter, record
from connector.policy.rules import Deny, Verdict, decide
from connector.policy.vocab import Operation, Reason
from connector.ports import ExchangeObserver, GmailJson, MailboxPort, OutgoingMessage

if TYPE_CHECKING:
    import aiohttp

    from connector.ports import TokenSource
    from connector.settings import Settings

T = TypeVar("T")
Resolver = Callable[[], Awaitable[tuple[frozenset[str], dict[str, datetime]]]]

_FORMATS: Mapping[str, tuple[Operation, Action]] = {
    "full": (Operation.CONTENT_READ, Action.GMAIL_MESSAGE_READ),
    "raw": (Operation.CONTENT_READ, Action.GMAIL_MESSAGE_READ),
    "metadata": (Operation.METADATA_READ, Action.GMAIL_METADATA_READ),
    "minimal": (Operation.METADATA_READ, Action.GMAIL_METADATA_READ),
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _operation(fmt: str) -> tuple[Operation, Action]:
    try:
        return _FORMATS[fmt]
    except KeyError:
        raise PolicyInputError(f"format must be one of {sorted(_FORMATS)}, got {fmt!r}") from None


def _refs(kind: ResourceKind, ids: Iterable[str]) -> tuple[ResourceRef, ...]:
    return tuple(ResourceRef(kind, i) for i in ids)


def _internal_date(message: GmailJson) -> datetime | None:
    raw = message.get("internalDate")
    return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, UTC)


def _members(messages: Iterable[GmailJson]) -> tuple[frozenset[str], dict[str, datetime]]:
    ids: set[str] = set()
    times: dict[str, datetime] = {}
    for message in messages:
        ids.add(message["id"])
        when = _internal_date(message)
        if when is not None:
            times[message["id"]] = when
    return frozenset(ids), times


def _sent_refs(result: GmailJson) -> tuple[ResourceRef, ...]:
    message = result.get("message", result)
    refs = []
    if "id" in message:
        refs.append(ResourceRef(ResourceKind.MESSAGE, message["id"]))
    if "threadId" in message:
        refs.append(ResourceRef(ResourceKind.THREAD, message["threadId"]))
    if "message" in result and "id" in result:
        refs.append(ResourceRef(ResourceKind.DRAFT, result["id"]))
    return tuple(refs)


def _bound_to_approval(
    query: list[str], approval: ApprovalFact | None
) -> tuple[datetime, datetime] | None:
    """An operator lists only inside the approved time range; Gmail's own filter enforces it."""
    if approval is None or approval.time_from is None or approval.time_to is None:
        return None
    start, end = approval.time_from, approval.time_to
    query[0] = f"{query[0]} after:{int(start.timestamp())} before:{int(end.timestamp())}".strip()
    return (start, end)


class Gate:
    """Policy + audit + Gmail, combined in one place. See the module docstring for the flow."""

    def __init__(
        self,
        mailbox: MailboxPort,
        audit: AuditSink,
        owners: AccountOwners,
        facts: BasisFacts,
        usage: UsageCounter,
        *,
        hash_key: bytes,
        clock: Callable[[], datetime] = utc_now,
        aggregate_k: int = DEFAULT_K,
    ) -> None:
        if not hash_key:
            # An unkeyed hash of a search query can be reversed by guessing; refuse to run.
            raise ValueError("the gate needs a hash key (CONNECTOR_AUDIT_HASH_KEY)")
        self._mailbox = mailbox
        self._audit = audit
        self._owners = owners
        self._facts = facts
        self._usage = usage
        self._key = hash_key
        self._clock = clock
        self._k = aggregate_k
        self.stats = GateStats()

    # -- the flow ---------------------------------------------------------------------------

    async def _basis_facts(
        self, basis: Basis | None
    ) -> tuple[ConsentFact | None, ApprovalFact | None]:
        if basis is None:
            return None, None
        if basis.kind is BasisKind.CONSENT:
            return await self._facts.consent(basis.id), None
        return None, await self._facts.approval(basis.id)

    async def _open(
        self,
        ctx: AccessContext,
        *,
        action: Action,
        operation: Operation,
        account_id: str | None,
        basis: Basis | None,
        resources: tuple[ResourceRef, ...],
        message_ids: frozenset[str] = frozenset(),
        mailbox_wide: bool = False,
        resolved: bool = True,
        resolver: Resolver | None = None,
        window_query: list[str] | None = None,
    ) -> tuple[Access, PolicyRequest]:
        """Decide and durably record the decision; raise `AccessDenied` on deny."""
        now = self._clock()
        owner = None if account_id is None else await self._owners.owner_of(account_id)
        consent, approval = await self._basis_facts(basis)
        window = None
        if window_query is not None and ctx.actor.kind is ActorKind.OPERATOR:
            window = _bound_to_approval(window_query, approval)
        if window_query is not None and window_query[0]:
            resources = (*resources, query_hash(self._key, window_query[0]))
        req = PolicyRequest(
            ctx.actor, operation, ctx.purpose, now, account_id=account_id, account_owner=owner,
            message_ids=message_ids, mailbox_wide=mailbox_wide, resolved=resolved, window=window,
            basis=basis, consent=consent, approval=approval, support_case=ctx.support_case,
        )  # fmt: skip
        legal_hold = approval is not None and approval.legal_hold
        access = Access(
            ctx, action, account_id, basis, resources, legal_hold, now, uuid.uuid4().hex
        )
        verdict = decide(req)
        if verdict.reasons == (Reason.RESOURCE_UNRESOLVED,) and resolver is not None:
            try:
                ids, times = await resolver()
            except Exception as exc:
                await self._decided(access, verdict, error=error_code(exc))
                raise
            req = replace(
                req, message_ids=req.message_ids | ids, message_times=times, resolved=True
            )
            new = sorted(ids - message_ids)
            access = replace(access, resources=access.resources + _refs(ResourceKind.MESSAGE, new))
            verdict = decide(req)
        await self._decided(access, verdict)
        if isinstance(verdict, Deny):
            raise AccessDenied(verdict, access.access_id)
        return access, req

    async def _decided(self, access: Access, verdict: Verdict, *, error: str | None = None) -> None:
        self.stats.decisions += 1
        if verdict.allowed:
            self.stats.allowed += 1
        else:
            self.stats.denied += 1
            if Reason.PURPOSE_FORBIDDEN in verdict.reasons:
                self.stats.policy_violations += 1
        await self._record(access.decision_event(verdict, error=error))

    async def _record(self, event: Any) -> None:
        try:
            await record(self._audit, event)
        except AuditUnavailableError:
            self.stats.audit_failures += 1
            raise

    async def _finish(
        self,
        access: Access,
        operation: Operation,
        *,
        extra: tuple[ResourceRef, ...] = (),
        exc: BaseException | None = None,
    ) -> None:
        if exc is not None:
            self.stats.gmail_errors += 1
        await self._count(access, operation, error=exc is not None)
        code = None if exc is None else error_code(exc)
        await self._record(access.outcome_event(self._clock(), extra=extra, error=code))

    async def _count(self, access: Access, operation: Operation, *, error: bool) -> None:
        if access.account_id is None:
            return
        try:
            await self._usage.increment(
                access.account_id, access.now.date(), operation.value, error=error
            )
        except Exception:  # counters feed statistics, not evidence: never block an access on them
            self.stats.usage_errors += 1

    async def _run(
        self,
        access: Access,
        operation: Operation,
        call: Callable[[], Awaitable[T]],
        refs: Callable[[T], tuple[ResourceRef, ...]] = lambda _: (),
    ) -> T:
        try:
            result = await call()
        except Exception as exc:
            await self._finish(access, operation, exc=exc)
            raise
        await self._finish(access, operation, extra=refs(result))
        return result

    def _message_times(self, account_id: str, ids: list[str]) -> Resolver:
        async def resolve() -> tuple[frozenset[str], dict[str, datetime]]:
            found = await self._mailbox.get_messages(account_id, ids, fmt="minimal")
            return _members(found)

        return resolve

    # -- reads ------------------------------------------------------------------------------

    async def get_profile(self, ctx: AccessContext, account_id: str) -> GmailJson:
        op = Operation.METADATA_READ
        access, _ = await self._open(
            ctx, action=Action.GMAIL_PROFILE_READ, operation=op, account_id=account_id,
            basis=None, resources=(), mailbox_wide=True,
        )  # fmt: skip
        return await self._run(access, op, lambda: self._mailbox.get_profile(account_id))

    async def list_labels(self, ctx: AccessContext, account_id: str) -> GmailJson:
        op = Operation.METADATA_READ
        access, _ = await self._open(
            ctx, action=Action.GMAIL_LABEL_LIST, operation=op, account_id=account_id,
            basis=None, resources=(), mailbox_wide=True,
        )  # fmt: skip
        return await self._run(access, op, lambda: self._mailbox.list_labels(account_id))

    async def list_messages(
        self,
        ctx: AccessContext,
        account_id: str,
        *,
        query: str | None = None,
        label_ids: tuple[str, ...] = (),
        page_token: str | None = None,
        max_results: int = 100,
        basis: Basis | None = None,
    ) -> GmailJson:
        """Message stubs; the audit log gets a keyed hash of the query sent, never its text."""
        op = Operation.METADATA_READ
        sent_query = [query or ""]
        access, _ = await self._open(
            ctx, action=Action.GMAIL_MESSAGE_LIST, operation=op, account_id=account_id,
            basis=basis, resources=_refs(ResourceKind.LABEL, label_ids), mailbox_wide=True,
            window_query=sent_query,
        )  # fmt: skip
        return await self._run(
            access,
            op,
            lambda: self._mailbox.list_messages(
                account_id,
                query=sent_query[0] or None,
                label_ids=label_ids,
                page_token=page_token,
                max_results=max_results,
            ),
            lambda r: _refs(ResourceKind.MESSAGE, (m["id"] for m in r.get("messages", []))),
        )

    async def read_message(
        self,
        ctx: AccessContext,
        account_id: str,
        message_id: str,
        fmt: str = "full",
        basis: Basis | None = None,
        *,
        metadata_headers: tuple[str, ...] = (),
    ) -> GmailJson:
        op, action = _operation(fmt)
        access, _ = await self._open(
            ctx, action=action, operation=op, account_id=account_id, basis=basis,
            resources=(ResourceRef(ResourceKind.MESSAGE, message_id),),
            message_ids=frozenset({message_id}),
            resolver=self._message_times(account_id, [message_id]),
        )  # fmt: skip
        return await self._run(
            access,
            op,
            lambda: self._mailbox.get_message(
                account_id, message_id, fmt=fmt, metadata_headers=metadata_headers
            ),
            lambda r: _refs(ResourceKind.THREAD, [r["threadId"]] if "threadId" in r else []),
        )

    async def read_messages(
        self,
        ctx: AccessContext,
        account_id: str,
        message_ids: list[str],
        fmt: str = "metadata",
        basis: Basis | None = None,
        *,
        metadata_headers: tuple[str, ...] = (),
    ) -> list[GmailJson]:
        """Batched read of named messages (one decision covers all of them, or none)."""
        op, action = _operation(fmt)
        ids = list(dict.fromkeys(message_ids))
        access, _ = await self._open(
            ctx, action=action, operation=op, account_id=account_id, basis=basis,
            resources=_refs(ResourceKind.MESSAGE, ids), message_ids=frozenset(ids),
            resolver=self._message_times(account_id, ids),
        )  # fmt: skip
        return await self._run(
            access,
            op,
            lambda: self._mailbox.get_messages(
                account_id, ids, fmt=fmt, metadata_headers=metadata_headers
            ),
        )

    async def get_thread(
        self,
        ctx: AccessContext,
        account_id: str,
        thread_id: str,
        fmt: str = "full",
        basis: Basis | None = None,
    ) -> GmailJson:
        op, _ = _operation(fmt)

        async def members() -> tuple[frozenset[str], dict[str, datetime]]:
            found = await self._mailbox.get_thread(account_id, thread_id, fmt="minimal")
            return _members(found.get("messages", []))

        access, req = await self._open(
            ctx, action=Action.GMAIL_THREAD_READ, operation=op, account_id=account_id,
            basis=basis, resources=(ResourceRef(ResourceKind.THREAD, thread_id),),
            resolved=False, resolver=members,
        )  # fmt: skip
        try:
            thread = await self._mailbox.get_thread(account_id, thread_id, fmt=fmt)
        except Exception as exc:
            await self._finish(access, op, exc=exc)
            raise
        ids, times = _members(thread.get("messages", []))
        extra = _refs(ResourceKind.MESSAGE, sorted(ids))
        if basis is not None and not ids <= req.message_ids:
            # The thread grew after the decision: decide again on what was actually fetched.
            verdict = decide(replace(req, message_ids=ids, message_times=times, resolved=True))
            if isinstance(verdict, Deny):
                await self._count(access, op, error=True)
                event = access.outcome_event(self._clock(), extra=extra, denied=verdict.reasons)
                await self._record(event)
                raise AccessDenied(verdict, access.access_id)
        await self._finish(access, op, extra=extra)
        return thread

    async def stream_attachment(
        self,
        ctx: AccessContext,
        account_id: str,
        message_id: str,
        attachment_id: str,
        basis: Basis | None = None,
    ) -> AsyncIterator[bytes]:
        """Decide, record, and start the download; return the bytes as an async iterator.

        The OUTCOME event is written once Gmail has delivered the first chunk, before any byte
        reaches the caller; a failure later in the stream appends a second OUTCOME (error).
        """
        op = Operation.ATTACHMENT_READ
        access, _ = await self._open(
            ctx, action=Action.GMAIL_ATTACHMENT_READ, operation=op, account_id=account_id,
            basis=basis, resources=(
                ResourceRef(ResourceKind.MESSAGE, message_id),
                ResourceRef(ResourceKind.ATTACHMENT, attachment_id),
            ),
            message_ids=frozenset({message_id}),
            resolver=self._message_times(account_id, [message_id]),
        )  # fmt: skip
        source = self._mailbox.stream_attachment(account_id, message_id, attachment_id)
        chunks = aiter(source)
        try:
            first = await anext(chunks, b"")
        except Exception as exc:
            await self._finish(access, op, exc=exc)
            raise
        await self._finish(access, op)
        return self._rest(access, first, chunks)

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
            await self._record(access.outcome_event(self._clock(), error=error_code(exc)))
            raise

    # -- drafts and sending -----------------------------------------------------------------

    async def list_drafts(
        self,
        ctx: AccessContext,
        account_id: str,
        *,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> GmailJson:
        op = Operation.DRAFT_READ
        access, _ = await self._open(
            ctx, action=Action.GMAIL_DRAFT_LIST, operation=op, account_id=account_id,
            basis=None, resources=(), mailbox_wide=True,
        )  # fmt: skip
        return await self._run(
            access,
            op,
            lambda: self._mailbox.list_drafts(
                account_id, page_token=page_token, max_results=max_results
            ),
            lambda r: _refs(ResourceKind.DRAFT, (d["id"] for d in r.get("drafts", []))),
        )

    async def _draft_call(
        self,
        ctx: AccessContext,
        account_id: str,
        action: Action,
        operation: Operation,
        call: Callable[[], Awaitable[T]],
        *,
        draft_id: str | None = None,
        thread_id: str | None = None,
        refs: Callable[[T], tuple[ResourceRef, ...]] = lambda _: (),
    ) -> T:
        resources = _refs(ResourceKind.DRAFT, [draft_id] if draft_id else [])
        resources += _refs(ResourceKind.THREAD, [thread_id] if thread_id else [])
        access, _ = await self._open(
            ctx, action=action, operation=operation, account_id=account_id, basis=None,
            resources=resources, mailbox_wide=draft_id is None and thread_id is None,
        )  # fmt: skip
        return await self._run(access, operation, call, refs)

    async def get_draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> GmailJson:
        return await self._draft_call(
            ctx, account_id, Action.GMAIL_DRAFT_READ, Operation.DRAFT_READ,
            lambda: self._mailbox.get_draft(account_id, draft_id), draft_id=draft_id,
            refs=_sent_refs,
        )  # fmt: skip

    async def create_draft(
        self, ctx: AccessContext, account_id: str, message: OutgoingMessage
    ) -> GmailJson:
        return await self._draft_call(
            ctx, account_id, Action.GMAIL_DRAFT_CREATE, Operation.DRAFT_WRITE,
            lambda: self._mailbox.create_draft(account_id, message),
            thread_id=message.thread_id, refs=_sent_refs,
        )  # fmt: skip

    async def update_draft(
        self, ctx: AccessContext, account_id: str, draft_id: str, message: OutgoingMessage
    ) -> GmailJson:
        return await self._draft_call(
            ctx, account_id, Action.GMAIL_DRAFT_UPDATE, Operation.DRAFT_WRITE,
            lambda: self._mailbox.update_draft(account_id, draft_id, message),
            draft_id=draft_id, thread_id=message.thread_id, refs=_sent_refs,
        )  # fmt: skip

    async def delete_draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> None:
        await self._draft_call(
            ctx, account_id, Action.GMAIL_DRAFT_DELETE, Operation.DRAFT_WRITE,
            lambda: self._mailbox.delete_draft(account_id, draft_id), draft_id=draft_id,
        )  # fmt: skip

    async def send_draft(self, ctx: AccessContext, account_id: str, draft_id: str) -> GmailJson:
        return await self._draft_call(
            ctx, account_id, Action.GMAIL_DRAFT_SEND, Operation.MESSAGE_SEND,
            lambda: self._mailbox.send_draft(account_id, draft_id), draft_id=draft_id,
            refs=_sent_refs,
        )  # fmt: skip

    async def send_message(
        self, ctx: AccessContext, account_id: str, message: OutgoingMessage
    ) -> GmailJson:
        return await self._draft_call(
            ctx, account_id, Action.GMAIL_MESSAGE_SEND, Operation.MESSAGE_SEND,
            lambda: self._mailbox.send_message(account_id, message),
            thread_id=message.thread_id, refs=_sent_refs,
        )  # fmt: skip

    async def replay_send(self, ctx: AccessContext, account_id: str, sent: GmailJson) -> GmailJson:
        """Answer a client's retry of a send that already happened with that send's result.

        The retry is decided and audited like a send (so it is refused if the caller lost
        access meanwhile), under its own action so the trail shows no second send; Gmail is not
        called and the send is not counted again in usage statistics.
        """
        thread_id = sent.get("threadId")
        access, _ = await self._open(
            ctx, action=Action.GMAIL_MESSAGE_SEND_REPLAYED, operation=Operation.MESSAGE_SEND,
            account_id=account_id, basis=None,
            resources=_refs(ResourceKind.THREAD, [thread_id] if thread_id else []),
            mailbox_wide=thread_id is None,
        )  # fmt: skip
        await self._record(access.outcome_event(self._clock(), extra=_sent_refs(sent)))
        return sent

    # -- aggregates -------------------------------------------------------------------------

    async def aggregates(self, ctx: AccessContext, start: date, end: date) -> AggregateReport:
        """Per-day, per-operation totals across accounts; groups under k accounts withheld."""
        op = Operation.AGGREGATE_READ
        access, _ = await self._open(
            ctx, action=Action.AGGREGATE_READ, operation=op, account_id=None, basis=None,
            resources=(),
        )  # fmt: skip

        async def compute() -> AggregateReport:
            return aggregate(await self._usage.counts(start, end), self._k)

        return await self._run(access, op, compute)


def build_gate(
    settings: Settings,
    *,
    audit: AuditSink,
    owners: AccountOwners,
    facts: BasisFacts,
    usage: UsageCounter,
    token_source: TokenSource,
    session: aiohttp.ClientSession,
    clock: Callable[[], datetime] = utc_now,
    observe: ExchangeObserver | None = None,
) -> Gate:
    """The gate over the real Gmail client (Google or the emulator, by `gmail_api_endpoint`)."""
    from connector.gmail import GmailClient, QuotaPolicy

    quota = QuotaPolicy.for_regime(
        settings.gmail_quota_regime,
        max_concurrency_per_user=settings.gmail_max_concurrency_per_user,
        shares=settings.workers,
    )
    client = GmailClient(
        settings.gmail_api_endpoint, token_source, session, quota=quota, observe=observe
    )
    return Gate(
        client, audit, owners, facts, usage,
        hash_key=settings.audit_hash_key.encode("utf-8"), clock=clock,
        aggregate_k=settings.aggregate_k,
    )  # fmt: skip
