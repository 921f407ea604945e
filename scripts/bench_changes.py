"""Benchmark: mail arriving in Gmail to a signed webhook at the platform, end to end.

N linked accounts (default 1,000) on one PostgreSQL; two `connector serve` processes in push
mode against the emulator's Gmail and Pub/Sub; mail injected into the emulator at a steady rate;
a webhook receiver that verifies every delivery with the Standard Webhooks reference library.
Prints one JSON line: p50/p99 from injection to webhook receipt, changes per second delivered,
events lost (target 0), duplicate event ids delivered, Gmail quota units per change.

    .venv/bin/python scripts/bench_changes.py [--accounts 1000] [--rate 200] [--seconds 20]

PostgreSQL: CONNECTOR_BENCH_PG_URL (an owner login), else a throwaway server from scripts/pg.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import secrets
import sys
import time
from datetime import UTC
from typing import Any

from connector.accounts.vault import generate_key_entry
from connector.emulator.quota import QuotaConfig
from connector.emulator.server import EmulatorConfig, run_emulator
from connector.testing import fleet

RAW = b"From: sender@example.com\r\nSubject: bench\r\n\r\nhello\r\n"


async def _fed_at(url: str, message_ids: Any, mono_offset: float) -> dict[str, float]:
    """When each injected message's `message_added` change was committed to the feed, on the
    monotonic clock of the injector (`created_at` is wall-clock UTC; offset = wall - mono)."""
    rows = await fleet.query(
        url, "SELECT message_id, created_at FROM accounts_change WHERE kind = 'message_added'"
    )
    wanted = set(message_ids)
    found: dict[str, float] = {}
    for message_id, created in rows:
        if message_id in wanted and message_id not in found:
            at = created if created.tzinfo else created.replace(tzinfo=UTC)
            found[message_id] = at.timestamp() - mono_offset
    return found


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else -1.0


async def bench(accounts: int, rate: float, seconds: float, settle: float) -> dict[str, Any]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    keys, hash_key = generate_key_entry("bench1"), secrets.token_urlsafe(24)
    receiver = fleet.WebhookSink(secret)
    config = EmulatorConfig(seed="bench-changes", users=accounts, messages_per_user=1,
                            quota=QuotaConfig(), pubsub_pull_wait=0.5)  # fmt: skip
    with fleet.bench_postgres("bench-changes") as server:
        async with (
            fleet.fresh_database(server, "bench_changes") as url,
            run_emulator(config) as emu,
            fleet.sink_server(receiver, fleet.free_port()) as hook,
        ):
            emu.pubsub.create_topic(fleet.TOPIC)
            emu.pubsub.create_subscription(fleet.SUBSCRIPTION, fleet.TOPIC, ack_deadline=30)
            await fleet.seed_accounts(url, emu, accounts, keys, hash_key)
            envs = [
                fleet.service_env(url, emu, port=fleet.free_port(), hook=hook, secret=secret,
                                  keys=keys, hash_key=hash_key)
                for _ in range(2)
            ]  # fmt: skip
            async with fleet.services(envs) as procs:
                started = time.monotonic()
                await fleet.wait_ready(url, accounts, procs)
                warmup = round(time.monotonic() - started, 1)
                pids = " ".join(str(p.pid) for p in procs)
                print(f"bench_changes: injecting (services {pids})", file=sys.stderr, flush=True)
                emu.stats.reset()
                injected: dict[str, float] = {}
                boxes = [emu.state.mailbox(e) for e in emu.users[:accounts]]
                total = int(rate * seconds)
                begin = time.monotonic()
                for n in range(total):
                    due = begin + n / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    box = random.choice(boxes)
                    assert box is not None
                    injected[box.add_message(RAW, ["INBOX", "UNREAD"]).id] = time.monotonic()
                deadline = time.monotonic() + settle
                while (
                    time.monotonic() < deadline
                    and len(receiver.arrived.keys() & injected.keys()) < total
                ):
                    await asyncio.sleep(0.1)
                last = max(receiver.arrived.values(), default=begin)
                fed = await _fed_at(url, injected.keys(), time.time() - time.monotonic())
                # accounts whose head change failed and waits for a retry (the receiver's
                # answers): a change lost that way is the webhook's, not the pipeline's
                retrying = (await fleet.query(
                    url, "SELECT count(*) FROM delivery_cursor WHERE head_seq IS NOT NULL"
                ))[0][0]  # fmt: skip
    latencies = [receiver.arrived[m] - t for m, t in injected.items() if m in receiver.arrived]
    delivered = len(latencies)
    units = emu.stats.units_charged
    to_feed = [fed[m] - t for m, t in injected.items() if m in fed]
    feed_to_hook = [receiver.arrived[m] - fed[m] for m in fed if m in receiver.arrived]
    return {
        "bench": "changes",
        "accounts": accounts,
        "instances": 2,
        "rate_target_per_s": rate,
        "injected": total,
        "delivered": delivered,
        "lost": total - delivered,
        "lost_before_feed": total - len(fed),  # of the lost: never committed to the feed
        "accounts_retrying_at_end": retrying,
        "duplicate_event_ids": receiver.duplicates(),
        "bad_signatures": receiver.bad_signatures,
        "p50_s": round(_quantile(latencies, 0.50), 3),
        "p99_s": round(_quantile(latencies, 0.99), 3),
        "changes_per_s": round(delivered / max(1e-9, last - begin), 1),
        # where the time goes: injection -> committed to the feed -> webhook received
        "to_feed_p50_s": round(_quantile(to_feed, 0.50), 3),
        "to_feed_p99_s": round(_quantile(to_feed, 0.99), 3),
        "feed_to_webhook_p50_s": round(_quantile(feed_to_hook, 0.50), 3),
        "feed_to_webhook_p99_s": round(_quantile(feed_to_hook, 0.99), 3),
        "gmail_units_per_change": round(units / max(1, total), 2),
        "warmup_s": warmup,
        "targets": {"p99_s": 2.0, "rate_per_s": 200, "lost": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="messages injected per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to inject")
    parser.add_argument("--settle", type=float, default=30.0, help="wait for stragglers")
    args = parser.parse_args()
    if args.accounts < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--accounts, --rate and --seconds must be positive")
    print(json.dumps(asyncio.run(bench(args.accounts, args.rate, args.seconds, args.settle))))


if __name__ == "__main__":
    main()
