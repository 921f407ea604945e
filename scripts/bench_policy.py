"""Benchmark the policy decision and the gate's own overhead; prints one JSON object.

The gate runs over the in-memory fake mailbox and a sink that keeps nothing, so what is measured
is the gate itself (fact resolution, decide, building two audit events, bookkeeping).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from audit.event import Actor, Basis
from audit.vocab import ActorKind, BasisKind, Purpose
from connector.policy import ConsentFact, GranteeKind, Operation, PolicyRequest, decide, plans
from connector.policy.access import AccessContext
from connector.policy.gate import Gate
from connector.policy.recorder import Recorder
from connector.ports import FETCH_METADATA
from connector.testing.mailbox import FakeMailbox
from connector.testing.memory import (
    DiscardingSink,
    MemoryBasisFacts,
    MemoryUsageCounter,
    StaticAccountOwners,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def _median_us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 2)


def bench_decide(rounds: int = 20_000) -> dict[str, float]:
    consent = ConsentFact(
        "c1", "acct1", "user1", GranteeKind.OPERATOR, "op1", frozenset({"m1", "m2"}),
        NOW - timedelta(days=1), NOW + timedelta(days=6),
    )  # fmt: skip
    cases = {
        "owner_read": PolicyRequest(
            Actor(ActorKind.USER, "user1"), Operation.CONTENT_READ, Purpose.USER_FEATURE, NOW,
            account_id="acct1", account_owner="user1", message_ids=frozenset({"m1"}),
        ),
        "operator_consent_read": PolicyRequest(
            Actor(ActorKind.OPERATOR, "op1"), Operation.CONTENT_READ, Purpose.CONSENTED_SUPPORT,
            NOW, account_id="acct1", account_owner="user1", message_ids=frozenset({"m1"}),
            basis=Basis(BasisKind.CONSENT, "c1"), consent=consent,
        ),
        "forbidden_purpose": PolicyRequest(
            Actor(ActorKind.USER, "user1"), Operation.CONTENT_READ, Purpose.ADVERTISING, NOW,
            account_id="acct1", account_owner="user1", message_ids=frozenset({"m1"}),
        ),
    }  # fmt: skip
    out = {}
    for name, req in cases.items():
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            decide(req)
            samples.append(time.perf_counter() - start)
        out[name] = _median_us(samples)
    return out


async def bench_gate(rounds: int = 5_000) -> dict[str, float]:
    mailbox = FakeMailbox()
    mailbox.add_message("acct1", "m1")
    gate = Gate(
        mailbox, Recorder(DiscardingSink()), StaticAccountOwners({"acct1": "user1"}),
        MemoryBasisFacts(), MemoryUsageCounter(), hash_key=b"bench",
    )  # fmt: skip
    ctx = AccessContext(Actor(ActorKind.USER, "user1"), Purpose.USER_FEATURE, request_id="r1")

    # The fake's own cost, measured alone, so the gate's overhead is what remains.
    direct, gated = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        await mailbox.get_message("acct1", "m1", FETCH_METADATA)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        await gate.run(ctx, plans.message("acct1", "m1", "metadata"))
        gated.append(time.perf_counter() - start)
    return {
        "fake_mailbox_call_us": _median_us(direct),
        "gate_read_total_us": _median_us(gated),
        "gate_overhead_us": round(_median_us(gated) - _median_us(direct), 2),
    }


def main() -> None:
    decisions = bench_decide()
    gate = asyncio.run(bench_gate())
    print(
        json.dumps(
            {
                "decide_median_us": decisions,
                "decide_target_us": 20,
                "gate": gate,
                "gate_overhead_target_us": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
