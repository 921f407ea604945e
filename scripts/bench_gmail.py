"""Benchmark the async Gmail client against the emulator; prints ONE JSON line.

(a) metadata for N messages, quota off: this client (batched, concurrent, one aiohttp session)
    vs. a quickstart-style loop of googleapiclient `.execute()` calls over real httplib2,
    one at a time, vs. aiogoogle (concurrent requests over aiohttp), in the same run against
    the same emulator. aiogoogle is not a project dependency: it is installed into the
    benchmark's own venv (.venv-bench, created on first use, gitignored) and its leg runs there
    as a subprocess (scripts/bench_gmail_aiogoogle.py).
(b) full metadata sync of M messages with the legacy quota on (250 units/user/s,
    messages.get = 5): units/s achieved as a fraction of the ceiling, and rate-limit answers.
(c) archiving A messages (remove INBOX) with the legacy quota on: one messages.batchModify per
    1,000 ids (50 units each) vs one messages.modify per message (5 units each): Gmail calls,
    units charged (and what the per-minute regime would charge) and seconds.

The emulator runs on its own event loop in a background thread so that the synchronous
baseline can block without stalling it. Usage: python scripts/bench_gmail.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import googleapiclient
import httplib2
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build

from connector.emulator.quota import QuotaConfig, QuotaRegime
from connector.emulator.server import Emulator, EmulatorConfig, run_emulator_in_thread
from connector.gmail import GmailClient, QuotaPolicy
from connector.gmail_facts import PER_MINUTE_UNITS
from connector.logs import configure_logging
from connector.ports import AccessToken, Fetch, Format

METADATA_HEADERS = ("From", "To", "Subject", "Date")
ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
AIOGOOGLE = "aiogoogle==5.19.0"
# The previous figure of each headline number (#18), printed beside this run's.
PREVIOUS = {"speedup_vs_quickstart": 13.4}


class StaticTokens:
    """The benchmark's token source: tokens issued by the emulator, no refresh needed."""

    def __init__(self, token: str) -> None:
        self._token = AccessToken(token, datetime.now(UTC) + timedelta(hours=1), frozenset())

    async def access_token(self, account_id: str, *, force_refresh: bool = False) -> AccessToken:
        return self._token


def baseline(emu: Emulator, email: str, ids: list[str]) -> float:
    """Quickstart style: build the service, then execute() one get at a time."""
    info = emu.authorized_user_info(email)
    creds = Credentials(
        token=emu.issue_tokens(email)["access_token"],
        refresh_token=info["refresh_token"],
        token_uri=info["token_uri"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
    )
    http = AuthorizedHttp(creds, http=httplib2.Http())
    service = build(
        "gmail",
        "v1",
        http=http,
        static_discovery=True,
        client_options={"api_endpoint": emu.gmail_endpoint},
    )
    start = time.perf_counter()
    for mid in ids:
        message = (
            service.users()
            .messages()
            .get(userId="me", id=mid, format="metadata", metadataHeaders=list(METADATA_HEADERS))
            .execute()
        )
        assert message["id"] == mid
    elapsed = time.perf_counter() - start
    service.close()
    return elapsed


async def ours(emu: Emulator, email: str, ids: list[str]) -> float:
    tokens = StaticTokens(emu.issue_tokens(email)["access_token"])
    async with aiohttp.ClientSession() as session:
        client = GmailClient(emu.gmail_endpoint, tokens, session)
        start = time.perf_counter()
        messages = await client.get_messages(email, ids, Fetch(Format.METADATA, METADATA_HEADERS))
        elapsed = time.perf_counter() - start
    assert [m["id"] for m in messages] == ids
    return elapsed


def _bench_python() -> Path:
    """The benchmark venv's interpreter, with aiogoogle installed (created on first use)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import aiogoogle"], check=False, capture_output=True
    )
    if probe.returncode != 0:
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, AIOGOOGLE], check=True, capture_output=True)
    return python


def with_aiogoogle(emu: Emulator, email: str, ids: list[str]) -> float:
    """aiogoogle's idiom: one messages.get per id, all given to `as_user` at once."""
    discovery = Path(googleapiclient.__file__).parent / "discovery_cache/documents/gmail.v1.json"
    job = {
        "endpoint": emu.gmail_endpoint,
        "token": emu.issue_tokens(email)["access_token"],
        "ids": ids,
        "headers": list(METADATA_HEADERS),
        "discovery": str(discovery),
    }
    done = subprocess.run(
        [str(_bench_python()), str(ROOT / "scripts" / "bench_gmail_aiogoogle.py")],
        input=json.dumps(job), capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["messages"] == len(ids)
    return float(result["seconds"])


async def quota_sync(emu: Emulator, email: str) -> dict[str, Any]:
    emu.set_quota(QuotaConfig(regime=QuotaRegime.LEGACY))
    emu.stats.reset()
    tokens = StaticTokens(emu.issue_tokens(email)["access_token"])
    async with aiohttp.ClientSession() as session:
        client = GmailClient(
            emu.gmail_endpoint, tokens, session, quota=QuotaPolicy.for_regime("legacy")
        )
        start = time.perf_counter()
        result = await client.full_sync(email)
        elapsed = time.perf_counter() - start
    units = emu.stats.units_by_user[email]
    return {
        "messages": len(result.snapshot.messages),
        "seconds": round(elapsed, 2),
        "units": units,
        "units_per_s": round(units / elapsed, 1),
        "ceiling_units_per_s": 250,
        "fraction_of_ceiling": round(units / elapsed / 250, 3),
        "rate_limit_errors": emu.stats.rate_limited,
    }


async def archive(emu: Emulator, email: str, count: int) -> dict[str, Any]:
    """Archive `count` inbox messages both ways, each on its own fresh set of messages."""
    box = emu.state.mailbox(email)
    assert box is not None
    raw = f"From: a@example.com\r\nTo: {email}\r\nSubject: bulk\r\n\r\nx\r\n".encode()
    emu.set_quota(QuotaConfig(regime=QuotaRegime.LEGACY))
    tokens = StaticTokens(emu.issue_tokens(email)["access_token"])
    out: dict[str, Any] = {"messages": count}
    async with aiohttp.ClientSession() as session:
        client = GmailClient(
            emu.gmail_endpoint, tokens, session, quota=QuotaPolicy.for_regime("legacy")
        )
        for way in ("batch_modify", "modify_each"):
            ids = [box.add_message(raw, ["INBOX", "UNREAD"]).id for _ in range(count)]
            emu.stats.reset()
            start = time.perf_counter()
            if way == "batch_modify":
                await client.batch_modify(email, ids, [], ["INBOX"])
            else:
                await asyncio.gather(
                    *(client.modify_message(email, mid, [], ["INBOX"]) for mid in ids)
                )
            elapsed = time.perf_counter() - start
            assert all("INBOX" not in box.messages[i].label_ids for i in ids)
            calls = sum(emu.stats.requests.values())
            method = "messages.batchModify" if way == "batch_modify" else "messages.modify"
            out[way] = {
                "gmail_calls": calls,
                "units": emu.stats.units_by_user[email],
                "units_per_minute_regime": calls * PER_MINUTE_UNITS[method],
                "seconds": round(elapsed, 3),
                "rate_limit_errors": emu.stats.rate_limited,
            }
    out["speedup"] = round(out["modify_each"]["seconds"] / out["batch_modify"]["seconds"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metadata-messages", type=int, default=2000)
    parser.add_argument("--sync-messages", type=int, default=3000)
    parser.add_argument("--archive-messages", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("console", "WARNING")
    logging.getLogger("googleapiclient").setLevel(logging.ERROR)
    size = max(args.metadata_messages, args.sync_messages)
    config = EmulatorConfig(seed="bench", users=3, messages_per_user=size)
    with run_emulator_in_thread(config) as emu:
        email_a, email_b = emu.users[0], emu.users[1]
        box = emu.state.mailbox(email_a)
        ids = [m.id for m in box.newest_first()][: args.metadata_messages]
        for m in box.messages.values():  # parse once so neither side pays the first parse
            _ = m.parsed
        ours_s = asyncio.run(ours(emu, email_a, ids))
        base_s = baseline(emu, email_a, ids)
        aiogoogle_s = with_aiogoogle(emu, email_a, ids)
        for m in emu.state.mailbox(email_b).messages.values():
            _ = m.parsed
        sync = asyncio.run(asyncio.wait_for(quota_sync(emu, email_b), timeout=300))
        archived = asyncio.run(
            asyncio.wait_for(archive(emu, emu.users[2], args.archive_messages), timeout=300)
        )
    print(
        json.dumps(
            {
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "metadata": {
                    "messages": len(ids),
                    "client_seconds": round(ours_s, 3),
                    "quickstart_execute_seconds": round(base_s, 3),
                    "aiogoogle_seconds": round(aiogoogle_s, 3),
                    "speedup": round(base_s / ours_s, 1),
                    "speedup_vs_aiogoogle": round(aiogoogle_s / ours_s, 1),
                    "aiogoogle_vs_quickstart": round(base_s / aiogoogle_s, 1),
                    "previous": PREVIOUS,
                },
                "quota_sync": sync,
                "archive": archived,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
