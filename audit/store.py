"""The storage port behind `AuditLog`, and the SQL both engines share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

from audit.chain import Linked, Pending
from audit.encoding import format_time
from audit.records import Checkpoint, Row, RowQuery

# Called inside the writing transaction with (first seq, last seq, head hash) of the batch; a
# returned checkpoint is inserted in that same transaction.
CheckpointDecider = Callable[[int, int, bytes], Checkpoint | None]
BatchOutcome = list[Linked] | BaseException
BatchDone = Callable[[BatchOutcome], None]
SELECT_CHECKPOINTS = (
    "SELECT seq, head_hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq"
)

ROW_COLUMNS = (
    "seq",
    "time",
    "account_id",
    "actor_id",
    "action",
    "purpose",
    "decision",
    "body",
    "prev_hash",
    "hash",
)
SELECT_ROWS = f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_events"  # noqa: S608 - constants


class Store(Protocol):
    url: str

    async def migrate(self, *, create: bool) -> int: ...

    def submit_batch(
        self, batch: Sequence[Pending], decide: CheckpointDecider, done: BatchDone
    ) -> None:
        """Start committing `batch`: read the head under a lock that excludes other writers,
        link, insert, commit. Call from the event loop; `done` is called on the loop, once, with
        the linked events or the exception (nothing of the batch is then written)."""
        ...

    async def checkpoint_head(self, sign: Callable[[int, bytes], Checkpoint]) -> Checkpoint | None:
        """Sign the current head if no checkpoint covers it yet."""
        ...

    async def privilege_problems(self) -> list[str]:
        """What this store's login could do beyond appending and reading (none: [])."""
        ...

    async def add_key(self, key_id: str, public_pem: str) -> None: ...

    async def public_keys(self) -> dict[str, str]: ...

    async def checkpoints(self) -> list[Checkpoint]: ...

    async def query_rows(self, query: RowQuery) -> list[Row]: ...

    def stream_rows(self, chunk: int) -> AsyncIterator[list[Row]]: ...

    async def close(self) -> None: ...


def query_sql(
    query: RowQuery, *, placeholder: Callable[[int], str], resource_operator: str
) -> tuple[str, list[object]]:
    """A parameterised SELECT for `query` (values never enter the SQL text)."""
    filters = query.filters
    clauses: list[str] = []
    params: list[object] = []

    def add(sql: str, value: object) -> None:
        params.append(value)
        clauses.append(sql.format(placeholder(len(params))))

    for column, value in (
        ("account_id", filters.account_id),
        ("actor_id", filters.actor_id),
        ("action", filters.action),
        ("purpose", filters.purpose),
        ("decision", filters.decision),
    ):
        if value is not None:
            add(f"{column} = {{}}", str(value))
    if filters.since is not None:
        add("time >= {}", format_time(filters.since))
    if filters.until is not None:
        add("time < {}", format_time(filters.until))
    if query.after_seq is not None:
        add("seq > {}", query.after_seq)
    if query.before_seq is not None:
        add("seq < {}", query.before_seq)
    if filters.resource_id is not None:
        add(
            f"body {resource_operator} {{}}",
            resource_pattern(filters.resource_id, resource_operator),
        )
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if query.newest_first else "ASC"
    params.append(query.limit)
    return f"{SELECT_ROWS}{where} ORDER BY seq {order} LIMIT {placeholder(len(params))}", params


def resource_pattern(resource_id: str, operator: str) -> str:
    """Match a resource id inside the body's `resources` array, and nowhere else.

    After `"resources":[` the only `{"id":` objects in a canonical body are resource entries
    (the keys that follow are severity, source, time and v), so the pattern is exact. Resource
    ids cannot contain GLOB metacharacters; `_` is a LIKE wildcard and is escaped.
    """
    if operator == "GLOB":  # SQLite: GLOB is case-sensitive, LIKE is not
        return f'*"resources":[[]*{{"id":"{resource_id}","kind":*'
    escaped = resource_id.replace("\\", "\\\\").replace("_", "\\_")
    return f'%"resources":[%{{"id":"{escaped}","kind":%'


def reusing(signed: Checkpoint, decide: CheckpointDecider) -> CheckpointDecider:
    """`decide`, except that it returns `signed` again when the head is the one it signs: an
    optimistic write that signed a checkpoint and then took the locked path keeps it."""

    def again(first: int, last: int, head: bytes) -> Checkpoint | None:
        if (last, head.hex()) == (signed.seq, signed.head_hash):
            return signed
        return decide(first, last, head)

    return again


def outcome_of(finished: asyncio.Future[list[Linked]] | Future[list[Linked]]) -> BatchOutcome:
    """A finished batch's future (a task, or the writer thread's future) as a BatchOutcome."""
    if finished.cancelled():
        return asyncio.CancelledError("the audit write was cancelled")
    exc = finished.exception()
    return exc if exc is not None else finished.result()


async def write_batch(
    store: Store, batch: Sequence[Pending], decide: CheckpointDecider
) -> list[Linked]:
    """Commit one batch and wait for it (bulk loads, tools); the log itself uses submit_batch."""
    done: asyncio.Future[list[Linked]] = asyncio.get_running_loop().create_future()

    def settle(outcome: BatchOutcome) -> None:
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    store.submit_batch(batch, decide, settle)
    return await done
