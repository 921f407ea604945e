"""The one composition root: every service object is built here, from settings and open resources.

`connector serve`, `connector demo`, the CLIs, the tests and the benchmarks all get their objects
from these functions, so there is one answer to "what talks to what":

    Recorder(sink)                         the one path to the audit log
    Authority(recorder, owners)            decide-and-record for lifecycle changes and audit reads
    Gate(Gmail client, recorder, ...)      decide-and-record for every Gmail access (build_gate)
    Consents / AccessRequests(authority)   the human-access bases
    Inbox(gate, send keys)                 the user-facing feature
    Oversight(audit log, authority)        reviewers' queries and owners' access history

Accounts (owners, tokens, linking) come from an `AccountsFactory`: `real_accounts` (the accounts
tables, the vault, the real link flow) or `preset_accounts` (emulator-issued tokens handed over
directly, for tests and the benchmark).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.log import AuditLog, open_audit_log
from audit.signing import load_private_key
from audit.trust import TrustedKeys, load_trusted_keys
from audit.vocab import Purpose
from audit.witness import WitnessFile
from connector.accounts.changes import Change as FeedChange
from connector.accounts.changes import ChangeKind
from connector.accounts.credential_store import VaultCredentialStore
from connector.accounts.credentials import RefreshingTokenSource
from connector.accounts.feed import ChangeFeed
from connector.accounts.http_linking import HttpLinking
from connector.accounts.link_state import LinkStateStore, TicketClaims
from connector.accounts.mail_sync import SYNC_ACTOR, MailSync
from connector.accounts.oauth import LinkConfig, LinkService
from connector.accounts.store import AccountStore
from connector.accounts.sync_store import SyncStore
from connector.accounts.unlink import AccountPurger, BeforeRevoke, Unlinker
from connector.accounts.vault import Vault
from connector.clock import Clock, system_clock
from connector.delivery.dispatcher import (
    AccountOwnership,
    DeliveryConfig,
    Dispatcher,
    single_instance,
)
from connector.delivery.store import DeliveryPurger, DeliveryStore
from connector.errors import AccountNotLinkedError
from connector.gmail.pubsub import PubSubClient
from connector.inbox.send_keys import SendKeysPurger, SqlSendKeys
from connector.inbox.service import Inbox
from connector.live.hooks import LiveHooks
from connector.live.leases import Kind, LeaseLocks, LeaseOwnership, Leases, holder_id
from connector.live.polling import Poller
from connector.live.ports import AccountDirectory, AccountLocks, LocalLocks
from connector.live.pubsub_auth import default_credentials_token, static_token
from connector.live.push import PushReceiver
from connector.live.watches import WatchKeeper
from connector.live.worker import LiveWorker, Schedule
from connector.policy.access import AccessContext
from connector.policy.access_requests import AccessRequests
from connector.policy.authority import Authority
from connector.policy.consents import Consents
from connector.policy.gate import Gate, build_gate
from connector.policy.oversight import Oversight, ReadableLog
from connector.policy.ports import AccountOwners
from connector.policy.purge import PolicyPurger
from connector.policy.recorder import Recorder
from connector.policy.records import StoredBasisFacts
from connector.policy.usage import BufferedUsageCounter
from connector.ports import ExchangeObserver, StoredCredentials, TokenSource
from connector.rights.audit_archive import archiver_from_settings
from connector.rights.jobs import RetentionLoop
from connector.rights.retention import Retention
from connector.settings import Settings, SettingsError, SyncMode
from connector.testing.credentials import MemoryCredentialStore
from connector.testing.memory import StaticAccountOwners

# Account lifecycle as the HTTP API offers it. HttpLinking is its one implementation: the
# routes name it through this alias rather than through a protocol re-declaring its methods.
Linking = HttpLinking


@dataclass(frozen=True, slots=True)
class AccountsDeps:
    """What an accounts factory may use to build owners, tokens and linking."""

    settings: Settings
    engine: AsyncEngine
    recorder: Recorder
    session: aiohttp.ClientSession
    clock: Clock = system_clock


@dataclass
class AccountsBundle:
    owners: AccountOwners
    token_source: TokenSource
    linking: Linking | None = None
    # Accounts kept in the connector database (the real domain): what the live mailbox syncs.
    directory: AccountDirectory | None = None
    live_hooks: LiveHooks | None = None  # link and unlink hooks, bound to the live mailbox
    unlinker: Unlinker | None = None  # the real domain's: retention unlinks dormant accounts


AccountsFactory = Callable[[AccountsDeps], AbstractAsyncContextManager[AccountsBundle]]


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    audit_log: ReadableLog
    recorder: Recorder
    authority: Authority
    consents: Consents
    access_requests: AccessRequests
    gate: Gate
    inbox: Inbox
    oversight: Oversight
    accounts: AccountsBundle
    usage: BufferedUsageCounter
    hash_key: bytes
    feed: ChangeFeed  # the owner's change feed, polled or streamed (TRANSFER, recorded)
    clock: Clock = field(default=system_clock)


def build_services(
    settings: Settings,
    *,
    engine: AsyncEngine,
    audit_log: ReadableLog,
    recorder: Recorder,
    session: aiohttp.ClientSession,
    accounts: AccountsBundle,
    clock: Clock = system_clock,
    observe_gmail: ExchangeObserver | None = None,
) -> Services:
    if not settings.audit_hash_key:
        raise SettingsError(
            "CONNECTOR_AUDIT_HASH_KEY is required: addresses, IPs and queries are recorded as "
            "keyed hashes"
        )
    authority = Authority(recorder, accounts.owners, clock)
    usage = BufferedUsageCounter(engine)
    gate = build_gate(
        settings, recorder=recorder, owners=accounts.owners, facts=StoredBasisFacts(engine),
        usage=usage, token_source=accounts.token_source, session=session,
        clock=clock, observe=observe_gmail, engine=engine,
    )  # fmt: skip
    feed_store = SyncStore(engine, clock=clock)

    async def sending_paused(account_id: str) -> None:
        with contextlib.suppress(AccountNotLinkedError):  # preset accounts keep no feed
            await feed_store.append(account_id, [FeedChange(ChangeKind.SENDING_PAUSED)])

    return Services(
        settings=settings,
        engine=engine,
        audit_log=audit_log,
        recorder=recorder,
        authority=authority,
        consents=Consents(engine, authority, clock),
        access_requests=AccessRequests(engine, authority, clock),
        gate=gate,
        inbox=Inbox(gate, send_keys=SqlSendKeys(engine, clock), on_sending_paused=sending_paused),
        oversight=Oversight(
            audit_log,
            authority,
            trusted=trusted_keys(settings),
            witness=settings.audit_witness_file,
        ),
        accounts=accounts,
        usage=usage,
        hash_key=settings.audit_hash_key.encode("utf-8"),
        feed=ChangeFeed(
            feed_store,
            authority,
            poll_seconds=settings.feed_poll_seconds,
            lifetime_seconds=settings.feed_stream_seconds,
        ),
        clock=clock,
    )


def retention_run(
    settings: Settings, *, engine: AsyncEngine, authority: Authority, audit_log: ReadableLog,
    unlinker: Unlinker | None, clock: Clock = system_clock,
) -> Retention:  # fmt: skip
    """One retention run as `connector serve` and `connector retention run` both make it."""
    dormant = timedelta(days=settings.retention_dormant_days)
    notice = timedelta(days=settings.retention_dormant_notice_days)
    return Retention(
        engine, authority, dormant_after=dormant, dormant_notice=notice, unlinker=unlinker,
        archiver=archiver_from_settings(settings, audit_log), clock=clock,
    )  # fmt: skip


def build_retention(services: Services) -> RetentionLoop:
    """Retention runs in `connector serve` every RETENTION_RUN_HOURS: with several instances,
    the one holding the `retention` lease for the interval (and the advisory lock in the run)."""
    every = timedelta(hours=services.settings.retention_run_hours)
    retention = retention_run(
        services.settings, engine=services.engine, authority=services.authority,
        audit_log=services.audit_log, unlinker=services.accounts.unlinker, clock=services.clock,
    )  # fmt: skip
    if not _shared(services):
        return RetentionLoop(retention, every=every)
    leases = Leases(services.engine, holder_id(), services.clock)
    return RetentionLoop(retention, every=every,
                         may_run=partial(leases.acquire, Kind.RETENTION, "run", every))  # fmt: skip


def build_delivery(
    services: Services,
    session: aiohttp.ClientSession,
    *,
    ownership: AccountOwnership | None = None,
) -> Dispatcher | None:
    """Signed webhooks of the change feed to CONNECTOR_WEBHOOK_URL; None when no URL is set."""
    settings = services.settings
    if not settings.webhook_url:
        return None
    if not settings.webhook_secret:
        raise SettingsError(
            "CONNECTOR_WEBHOOK_SECRET (or CONNECTOR_WEBHOOK_SECRET_FILE) is required with "
            "CONNECTOR_WEBHOOK_URL: every delivery is signed (whsec_ + base64 key)"
        )
    config = DeliveryConfig(
        settings.webhook_url, settings.webhook_secret,
        horizon=timedelta(hours=settings.webhook_horizon_hours),
        backoff_base=timedelta(seconds=settings.webhook_backoff_base_seconds),
        backoff_cap=timedelta(seconds=settings.webhook_backoff_cap_seconds),
        timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds,
    )  # fmt: skip
    return Dispatcher(
        config, DeliveryStore(services.engine), services.feed.store, services.authority,
        session, ownership=ownership or _ownership(services), clock=services.clock,
    )  # fmt: skip


def _shared(services: Services) -> bool:
    """Work may be shared with other processes: several workers, or PostgreSQL (the engine
    several hosts share); then leases in the database say who does what."""
    postgres = services.engine.url.get_backend_name() == "postgresql"
    return postgres or services.settings.workers > 1


def _ownership(services: Services) -> AccountOwnership:
    if not _shared(services):
        return single_instance
    leases = Leases(services.engine, holder_id(), services.clock)
    ttl = timedelta(seconds=services.settings.lease_ttl_seconds)
    return LeaseOwnership(leases, Kind.DELIVERY, ttl)


def _locks(services: Services) -> AccountLocks:
    if not _shared(services):
        return LocalLocks()
    leases = Leases(services.engine, holder_id(), services.clock)
    return LeaseLocks(leases, timedelta(seconds=services.settings.lease_ttl_seconds))


def build_live(
    services: Services,
    session: aiohttp.ClientSession,
    *,
    locks: AccountLocks | None = None,
) -> LiveWorker | None:
    """The live mailbox for `connector serve`, or None when sync is off or the accounts are
    not kept in the connector database (preset accounts: nothing to sync into)."""
    settings, directory = services.settings, services.accounts.directory
    if settings.sync_mode is SyncMode.OFF or directory is None:
        return None
    locks = locks or _locks(services)
    # one signal with the feed: a commit here wakes this process's streams at once
    store = SyncStore(services.engine, clock=services.clock, signal=services.feed.store.signal)
    sync = MailSync(services.gate, store)
    push = settings.sync_mode is SyncMode.PUSH
    every = settings.sync_safety_poll_seconds if push else settings.sync_poll_seconds
    poller = Poller(directory, sync.sync, store.states, every=timedelta(seconds=every),
                    locks=locks, clock=services.clock)  # fmt: skip
    schedule = Schedule(poll_every=timedelta(seconds=every))
    hooks = services.accounts.live_hooks
    if not push:
        worker = LiveWorker(directory, poller, schedule)
        if hooks is not None:
            hooks.attach(worker)
        return worker
    secret = settings.pubsub_token
    token = static_token(secret) if secret else default_credentials_token()
    pubsub = PubSubClient(str(settings.pubsub_api_endpoint), token, session)
    receiver = PushReceiver(pubsub, settings.gmail_push_subscription, directory, sync.sync,
                            store.states, locks=locks)  # fmt: skip
    watches = WatchKeeper(
        services.gate, store, settings.gmail_push_topic,
        actor_context=AccessContext(SYNC_ACTOR, Purpose.USER_FEATURE), locks=locks,
        renew_every=timedelta(hours=settings.gmail_watch_renew_hours), clock=services.clock,
    )  # fmt: skip
    worker = LiveWorker(directory, poller, schedule, receiver=receiver, watches=watches)
    if hooks is not None:
        hooks.attach(worker)
    return worker


async def open_service_audit_log(settings: Settings) -> AuditLog:
    """The audit log as the service writes it: checkpoints signed with the configured key and
    each one copied to the witness file, if set, once it has committed; AuditPrivilegeError
    if the login may do more than INSERT and SELECT on the audit tables."""
    key_file = settings.audit_signing_key_file
    witness_file = settings.audit_witness_file
    return await open_audit_log(
        settings.audit_database_url,
        signing_key=load_private_key(key_file) if key_file is not None else None,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
        witness=WitnessFile(witness_file) if witness_file is not None else None,
        # Migrations as the owner, if given; the service's own login must not be able to
        # change or remove audit rows (PostgreSQL; a SQLite file has no roles).
        admin_url=settings.audit_admin_database_url or None,
        restricted=True,
    )


def trusted_keys(settings: Settings) -> TrustedKeys | None:
    """The pinned checkpoint keys the reviewer's verify trusts (None: consistency only)."""
    path = settings.audit_trusted_keys_file
    return None if path is None else load_trusted_keys(path)


# -- accounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountComponents:
    """The accounts domain over one database: stores, token source, link flow, unlinking."""

    vault: Vault
    accounts: AccountStore
    credentials: VaultCredentialStore
    token_source: RefreshingTokenSource
    links: LinkService
    unlinker: Unlinker


# Delete-my-data covers the other layers' per-account rows too (consents, usage counters,
# Idempotency-Key records).
DEFAULT_PURGERS: tuple[AccountPurger, ...] = (PolicyPurger(), SendKeysPurger(), DeliveryPurger())


def build_accounts(
    settings: Settings,
    *,
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    recorder: Recorder,
    clock: Clock = system_clock,
    purgers: Sequence[AccountPurger] = DEFAULT_PURGERS,
    before_revoke: Sequence[BeforeRevoke] = (),
) -> AccountComponents:
    """The real accounts domain: tokens sealed by the vault, the real link flow."""
    if not settings.oauth_client_id or not settings.oauth_client_secret:
        raise SettingsError(
            "CONNECTOR_OAUTH_CLIENT_ID and CONNECTOR_OAUTH_CLIENT_SECRET are required"
        )
    if not settings.audit_hash_key:
        raise SettingsError("CONNECTOR_AUDIT_HASH_KEY is required (keyed hash of linked addresses)")
    vault = Vault.from_settings(settings)
    config = LinkConfig.from_settings(settings)
    accounts = AccountStore(
        engine, vault, hash_key=settings.audit_hash_key.encode("utf-8"), clock=clock
    )
    authority = Authority(recorder, accounts, clock)
    credentials = VaultCredentialStore(engine, vault, clock=clock)
    token_source = RefreshingTokenSource(
        credentials, token_uri=config.token_uri, client_id=config.client_id,
        client_secret=config.client_secret, session=session, authority=authority, clock=clock,
    )  # fmt: skip
    links = LinkService(
        config, accounts=accounts, states=LinkStateStore(engine, vault), session=session,
        authority=authority, clock=clock,
    )  # fmt: skip
    key_file = settings.audit_signing_key_file  # deletion receipts are signed like checkpoints
    unlinker = Unlinker(
        engine, vault, config.endpoints(session), authority, purgers=purgers, clock=clock,
        signing_key=load_private_key(key_file) if key_file is not None else None,
        before_revoke=before_revoke,
    )  # fmt: skip
    return AccountComponents(vault, accounts, credentials, token_source, links, unlinker)


@contextlib.asynccontextmanager
async def real_accounts(deps: AccountsDeps) -> AsyncIterator[AccountsBundle]:
    """Accounts in the connector database and the link flow over HTTP (`connector serve`)."""
    hooks = LiveHooks()
    built = build_accounts(
        deps.settings, engine=deps.engine, session=deps.session, recorder=deps.recorder,
        clock=deps.clock, before_revoke=(hooks.before_revoke,),
    )  # fmt: skip
    linking = HttpLinking(
        deps.settings, built.links, built.accounts, built.unlinker, deps.clock,
        claims=TicketClaims(deps.engine), after_link=(hooks.after_link,),
    )  # fmt: skip
    yield AccountsBundle(
        owners=built.accounts, token_source=built.token_source, linking=linking,
        directory=built.accounts, live_hooks=hooks, unlinker=built.unlinker,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PresetAccount:
    owner_id: str  # the platform user who owns it
    credentials: StoredCredentials


def preset_accounts(accounts: Mapping[str, PresetAccount]) -> AccountsFactory:
    """Accounts linked out of band: credentials handed over directly, no linking API.

    For the benchmark and the end-to-end tests: tokens the emulator issued go into an in-memory
    credential store and are refreshed by the real `RefreshingTokenSource`.
    """

    @contextlib.asynccontextmanager
    async def factory(deps: AccountsDeps) -> AsyncIterator[AccountsBundle]:
        store = MemoryCredentialStore()
        for account_id, preset in accounts.items():
            store.put(account_id, preset.credentials)
        owners = StaticAccountOwners({a: p.owner_id for a, p in accounts.items()})
        settings = deps.settings
        tokens = RefreshingTokenSource(
            store, token_uri=settings.oauth_token_uri, client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret, session=deps.session,
            authority=Authority(deps.recorder, owners, deps.clock), clock=deps.clock,
        )  # fmt: skip
        yield AccountsBundle(owners=owners, token_source=tokens)

    return factory
