"""A whole `connector serve` instance SIGKILLed while it holds leases, on one PostgreSQL with
another instance: mail that arrives afterwards, and the notices the dead one had pulled but not
acknowledged, reach the platform through the survivor; nothing is lost, and a change delivered
twice is delivered under the same event id (the receiver dedupes on it)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import signal

import pytest

from connector.accounts.vault import generate_key_entry
from connector.emulator.server import EmulatorConfig, run_emulator
from connector.testing import fleet

ACCOUNTS = 6
RAW = b"From: sender@example.com\r\nSubject: hello\r\n\r\nhi\r\n"
pytestmark = pytest.mark.timeout(240)


async def _arrived(sink: fleet.WebhookSink, ids: set[str], seconds: float) -> set[str]:
    """Wait until every one of `ids` was delivered (or `seconds` passed); the missing ones."""
    async with asyncio.timeout(seconds):
        while ids - sink.arrived.keys():
            await asyncio.sleep(0.1)
    return ids - sink.arrived.keys()


async def test_a_killed_instance_loses_nothing(pg_database: str) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    keys, hash_key = generate_key_entry("fleet1"), secrets.token_urlsafe(24)
    sink = fleet.WebhookSink(secret)
    config = EmulatorConfig(seed="instance-killed", users=ACCOUNTS, messages_per_user=1,
                            pubsub_pull_wait=0.5)  # fmt: skip
    async with run_emulator(config) as emu, fleet.sink_server(sink, fleet.free_port()) as hook:
        emu.pubsub.create_topic(fleet.TOPIC)
        emu.pubsub.create_subscription(fleet.SUBSCRIPTION, fleet.TOPIC, ack_deadline=10)
        await fleet.seed_accounts(pg_database, emu, ACCOUNTS, keys, hash_key)
        ttl = {"CONNECTOR_LEASE_TTL_SECONDS": "2"}
        envs = [
            fleet.service_env(pg_database, emu, port=fleet.free_port(), hook=hook,
                              secret=secret, keys=keys, hash_key=hash_key, extra=ttl)
            for _ in range(2)
        ]  # fmt: skip
        boxes = [emu.state.mailbox(e) for e in emu.users]
        async with fleet.services(envs) as procs:
            await fleet.wait_ready(pg_database, ACCOUNTS, procs, give_up=120)
            before = {box.add_message(RAW, ["INBOX"]).id for box in boxes if box}
            assert await _arrived(sink, before, 60) == set()

            victim, survivor = procs
            during = {box.add_message(RAW, ["INBOX"]).id for box in boxes if box}
            victim.proc.send_signal(signal.SIGKILL)  # mid-flight: pulls and leases just dropped
            await victim.proc.wait()
            after = {box.add_message(RAW, ["INBOX"]).id for box in boxes if box}
            assert await _arrived(sink, during | after, 90) == set()
            assert survivor.proc.returncode is None, survivor.log_tail()

    assert sink.bad_signatures == 0
    every = before | during | after
    assert len(every) == 3 * ACCOUNTS
    # a change seen twice came under one event id: the receiver's dedupe key is enough
    assert {m: len(sink.events_of[m]) for m in every} == dict.fromkeys(every, 1)
