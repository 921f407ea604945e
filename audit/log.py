"""`AuditLog`: group commit in front of a store, checkpoint policy, query and verify.

Group commit: `append()` encodes its event (validation happens here, before the chain is
touched), queues it with a future and waits. Up to MAX_IN_FLIGHT batches are committing at
once; whatever queued meanwhile leaves as the next batch one loop turn after a slot frees. The
store links and inserts a batch in one transaction, and every future is resolved only after
COMMIT returned, so concurrent callers share one fsync.

No task sits between a caller and the store: a settled batch resolves its callers and
schedules the next batch with one `call_soon`, which runs after the callers it woke have
appended again (see `_schedule`). A writer task here cost three event-loop turns per batch
(wake-up, the store's completion, the task's resumption), and under load each turn waits for
every other ready callback, so those turns, not the disk, set the append latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.chain import Pending
from audit.encoding import decode_body
from audit.errors import AuditPrivilegeError, AuditWriteError
from audit.event import AppendReceipt, AuditEvent
from audit.records import Checkpoint, QueryableLog, Row, RowQuery, StoredEvent
from audit.signing import key_id, public_key_from_pem, public_pem, sign_checkpoint
from audit.store import BatchOutcome, Store
from audit.trust import TrustedKeys, assess, checkpoint_keys
from audit.verify import ChainVerifier, VerifyReport
from audit.verify_parallel import MIN_EVENTS_PER_JOB, verify_in_parallel
from audit.witness import Witness, read_witness

MAX_BATCH = 4096
# Two batches in flight, so that the store's own work (SQLite's C code with the GIL released,
# its fsync, PostgreSQL's backend on the other core) overlaps the event loop's Python work for
# the other batch: with one, the two ran strictly one after the other. Chaining stays correct
# with any number, because each store commits its batches one at a time, in submission order,
# linking each onto the head it reads under its own write lock.
MAX_IN_FLIGHT = 2
# A queue at least this long, with nothing in flight, leaves as two batches: the first half's
# callers run while the second half commits, which is how the pipeline forms under a burst.
SPLIT_AT = 16
VERIFY_CHUNK = 20_000
logger = logging.getLogger("audit")


def stored_event(row: Row) -> StoredEvent:
    return StoredEvent(row[0], decode_body(row[7]), bytes(row[8]).hex(), bytes(row[9]).hex())


class AuditLog(QueryableLog):
    def __init__(
        self,
        store: Store,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60,
        witness: Witness | None = None,
    ) -> None:
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise ValueError("checkpoint_every must be >= 1 and checkpoint_seconds > 0")
        self.store = store
        self._key = signing_key
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._last_checkpoint = time.monotonic()
        self._queue: deque[tuple[Pending, asyncio.Future[AppendReceipt]]] = deque()
        self._in_flight = 0
        self._last_size = 0  # of the batch dispatched last (see _ready)
        self._scheduled = False  # a _dispatch_queued call is waiting for its loop turn
        self._settled = asyncio.Event()  # set whenever nothing is queued or committing
        self._settled.set()
        self._started = False
        self._closed = False
        self._idle_signer: asyncio.Task[None] | None = None
        self._witness = witness
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return self.store.url

    async def start(self) -> None:
        if self._key is not None:
            public = self._key.public_key()
            await self.store.add_key(key_id(public), public_pem(public))
        self._started = True
        self._idle_signer = asyncio.create_task(self._sign_when_idle(), name="audit-idle-sign")

    async def append(self, event: AuditEvent) -> AppendReceipt:
        """Durably commit `event`; return its receipt only after COMMIT.

        Raises InvalidEventError for a malformed event (nothing written), AuditWriteError when
        the store failed or the log is closed.
        """
        pending = Pending.of(event)
        if self._closed or not self._started:
            raise AuditWriteError("the audit log is closed")
        future: asyncio.Future[AppendReceipt] = asyncio.get_running_loop().create_future()
        self._queue.append((pending, future))
        self._settled.clear()
        self._schedule()
        return await future

    def _schedule(self) -> None:
        """Look at the queue one event-loop turn from now, when a slot is free.

        Not at once: the callers a settled batch just woke run in this turn, and each appends
        again (a request's outcome event follows its decision event). Starting at once would
        send the first of them alone and make the rest wait for its commit: 64 writers
        alternated batches of 1 and 63, two fsyncs per 64 events."""
        if not self._scheduled and self._in_flight < MAX_IN_FLIGHT:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch_queued)

    def _dispatch_queued(self) -> None:
        """Send what is queued, if now is the time (see `_ready`)."""
        self._scheduled = False
        if self._in_flight == 0 and MAX_IN_FLIGHT > 1 and len(self._queue) >= SPLIT_AT:
            self._dispatch(len(self._queue) // 2)
        while self._queue and self._in_flight < MAX_IN_FLIGHT and self._ready():
            self._dispatch(len(self._queue))
        if not self._queue and self._in_flight == 0:
            self._settled.set()

    def _ready(self) -> bool:
        """Whether the queue should leave now rather than wait for the batch in flight.

        With nothing in flight, always. With one batch committing, only once the queue is half
        that batch's size: a second batch of one or two would pay a commit of its own and make
        the callers that arrive next wait for both; a smaller queue waits for the batch in
        flight to settle (`_settle` schedules it), as with one batch in flight."""
        return self._in_flight == 0 or len(self._queue) * 2 >= self._last_size

    def _dispatch(self, count: int) -> None:
        """Start committing the first `count` queued appends (up to MAX_BATCH) as one batch."""
        batch = [self._queue.popleft() for _ in range(min(count, MAX_BATCH))]
        self._last_size = len(batch)
        self._in_flight += 1
        self._settled.clear()
        # The checkpoint the store's last call to `decide` returned is the one its transaction
        # inserted (a store may decide again after a lost race); published once committed.
        signed: list[Checkpoint] = []

        def decide(first: int, last: int, head: bytes) -> Checkpoint | None:
            checkpoint = self._decide(first, last, head)
            signed[:] = [] if checkpoint is None else [checkpoint]
            return checkpoint

        try:
            self.store.submit_batch(
                [p for p, _ in batch], decide, lambda outcome: self._settle(batch, outcome, signed)
            )
        except Exception as exc:  # e.g. the store's executor is gone
            self._settle(batch, exc)

    def _settle(
        self,
        batch: list[tuple[Pending, asyncio.Future[AppendReceipt]]],
        outcome: BatchOutcome,
        signed: Sequence[Checkpoint] = (),
    ) -> None:
        """On the event loop: answer the batch's callers, then schedule the next batch."""
        self._in_flight -= 1
        if isinstance(outcome, BaseException):  # every caller must learn it is not recorded
            error = AuditWriteError(f"audit append failed: {type(outcome).__name__}: {outcome}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        else:
            for item, (_, future) in zip(outcome, batch, strict=True):
                if not future.done():
                    future.set_result(
                        AppendReceipt(item.seq, item.pending.event.event_id, item.hash.hex())
                    )
            for checkpoint in signed:
                if checkpoint.seq == outcome[-1].seq:
                    self._publish_later(checkpoint)
        if self._queue:
            self._schedule()
        elif self._in_flight == 0:
            self._settled.set()

    async def _sign_when_idle(self) -> None:
        """Sign the head when no batch has signed it for `checkpoint_seconds` (idle periods)."""
        while True:
            await asyncio.sleep(self._seconds)
            quiet = time.monotonic() - self._last_checkpoint >= self._seconds
            if quiet and self._in_flight == 0 and not self._queue:
                await self._timed_checkpoint()

    def _decide(self, first: int, last: int, head: bytes) -> Checkpoint | None:
        """Runs inside the batch's transaction: sign when the batch crosses a multiple of
        `checkpoint_every` (same answer in every process) or the time budget ran out."""
        if self._key is None:
            return None
        crossed = last // self._every > (first - 1) // self._every
        if crossed or time.monotonic() - self._last_checkpoint >= self._seconds:
            self._last_checkpoint = time.monotonic()
            return sign_checkpoint(self._key, last, head)
        return None

    async def _timed_checkpoint(self) -> None:
        if self._key is None:
            return
        key = self._key
        # An idle-time checkpoint that fails is simply retried on the next tick.
        with contextlib.suppress(Exception):
            checkpoint = await self.store.checkpoint_head(
                lambda seq, head: sign_checkpoint(key, seq, head)
            )
            if checkpoint is not None:
                await self._publish(checkpoint)
        self._last_checkpoint = time.monotonic()

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now (if a signing key is set and the head moved)."""
        if self._key is None:
            return None
        key = self._key
        checkpoint = await self.store.checkpoint_head(
            lambda seq, head: sign_checkpoint(key, seq, head)
        )
        if checkpoint is not None:
            await self._publish(checkpoint)
        return checkpoint

    def _publish_later(self, checkpoint: Checkpoint) -> None:
        if self._witness is not None:
            task = asyncio.get_running_loop().create_task(self._publish(checkpoint))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, checkpoint: Checkpoint) -> None:
        """Copy a committed checkpoint to the witness. The events are already durable and
        their callers answered, so a failure is logged, not raised: the next checkpoint
        covers the same events, and `audit verify --witness` shows how far the witness got."""
        if self._witness is None:
            return
        try:
            await self._witness.publish(checkpoint)
        except Exception as exc:
            logger.warning(
                "audit witness: checkpoint at seq %d not published: %s: %s",
                checkpoint.seq, type(exc).__name__, exc,
            )  # fmt: skip

    async def _select(self, query: RowQuery) -> list[StoredEvent]:
        return [stored_event(row) for row in await self.store.query_rows(query)]

    async def checkpoints(self) -> list[Checkpoint]:
        return await self.store.checkpoints()

    async def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {k: public_key_from_pem(pem) for k, pem in (await self.store.public_keys()).items()}

    async def verify(
        self,
        *,
        trusted: TrustedKeys | None = None,
        public_keys: Mapping[str, Ed25519PublicKey] | None = None,
        witness: Path | None = None,
        progress: Callable[[int], None] | None = None,
        chunk: int = VERIFY_CHUNK,
        jobs: int = 1,
        min_per_job: int = MIN_EVENTS_PER_JOB,
    ) -> VerifyReport:
        """Recompute every hash and check every checkpoint.

        `trusted` (and `public_keys`, whole keys) are the pinned keys: a checkpoint signed by
        any other key is damage. Without them the keys recorded in the database are used, which
        proves consistency only; the report's `trust` and a note say so. With `witness` (a
        witness file) every witnessed checkpoint must be in the log with the same head hash,
        and the log must reach the latest. With `jobs` > 1 the chain is checked by that many
        processes (audit.verify_parallel) when the log has `min_per_job` events per job.
        """
        if public_keys is not None:
            pinned = TrustedKeys.of(public_keys.values())
            trusted = pinned if trusted is None else trusted.merged(pinned)
        keys, trust = checkpoint_keys(trusted, await self.store.public_keys())
        witnessed = None if witness is None else await asyncio.to_thread(read_witness, witness)
        verifier = ChainVerifier(
            await self.store.checkpoints(), keys, progress,
            witnessed=() if witnessed is None else witnessed.checkpoints,
        )  # fmt: skip
        # `jobs` processes check segments; a damaged (or small) log is scanned here, so the
        # report is the sequential one either way.
        if not await verify_in_parallel(self.store, verifier, jobs, min_per_job=min_per_job):
            async for rows in self.store.stream_rows(chunk):
                verifier.feed(rows)
        report = verifier.finish()
        if witnessed is not None:
            report.notes += witnessed.notes
        return assess(report, trust)

    async def close(self) -> None:
        """Drain queued appends, sign a final checkpoint, release connections."""
        if self._closed:
            return
        self._closed = True
        if self._idle_signer is not None:
            self._idle_signer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_signer
        await self._settled.wait()  # queued appends still commit
        if self._key is not None:
            with contextlib.suppress(Exception):
                await self.checkpoint()
        if self._publishing:
            await asyncio.gather(*self._publishing)
        if self._witness is not None:
            self._witness.close()
        await self.store.close()


def make_store(url: str) -> Store:
    """`sqlite:///relative/or//absolute/path` or `postgresql://...` (driver suffixes accepted)."""
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if scheme == "sqlite":
        from audit.sqlite_store import SqliteStore

        return SqliteStore(url, url.split(":///", 1)[1] if ":///" in url else "")
    if scheme in ("postgresql", "postgres"):
        from audit.pg_store import PostgresStore

        return PostgresStore(url, "postgresql://" + url.split("://", 1)[1])
    raise ValueError(
        f"unsupported audit log URL scheme {scheme!r}: use sqlite:/// or postgresql://"
    )


def _redacted(url: str) -> str:
    """A URL fit for messages: no password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


async def _refuse_privileged(store: Store) -> None:
    problems = await store.privilege_problems()
    if problems:
        raise AuditPrivilegeError(_redacted(store.url), problems)


async def migrate_audit_log(url: str) -> int:
    """Apply the audit schema's migrations at `url` (as the tables' owner); the version."""
    store = make_store(url)
    try:
        return await store.migrate(create=True)
    finally:
        await store.close()


async def open_audit_log(
    url: str,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    checkpoint_every: int = 1000,
    checkpoint_seconds: float = 60,
    create: bool = True,
    witness: Witness | None = None,
    admin_url: str | None = None,
    restricted: bool = False,
) -> AuditLog:
    """Open (and with `create`, migrate) the audit log at `url` and start its writer; signed
    checkpoints are also published to `witness`, which the log closes.

    With `admin_url` the migrations run there (the owner's login) and `url` only opens the
    migrated log. With `restricted` a login that may do more than INSERT and SELECT on the
    audit tables is refused (AuditPrivilegeError) before anything is written.
    """
    store = make_store(url)
    try:
        if admin_url:
            await migrate_audit_log(admin_url)
        await store.migrate(create=create and not admin_url)
        if restricted:
            await _refuse_privileged(store)
        log = AuditLog(
            store,
            signing_key=signing_key,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            witness=witness,
        )
        await log.start()
    except BaseException:
        await store.close()
        if witness is not None:
            witness.close()
        raise
    return log
