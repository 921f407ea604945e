"""`connector emulator`: run the Gmail API + Google OAuth emulator on loopback.

With `--print-credentials`, once listening it prints one google-auth authorized-user JSON per
seeded user on stdout (one per line), then keeps serving until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from connector.emulator.faults import FaultConfig
from connector.emulator.quota import QuotaConfig, QuotaRegime, RateLimitStyle
from connector.emulator.server import EmulatorConfig, run_emulator
from connector.logs import configure_logging


def _rate(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {value}")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return number


def _port(value: str) -> int:
    number = _non_negative_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="listen port (default 8765)")
    parser.add_argument("--seed", default="demo", help="mailbox generator seed (default demo)")
    parser.add_argument("--users", type=_non_negative_int, default=3, help="seeded users")
    parser.add_argument(
        "--messages", type=_non_negative_int, default=20, help="seeded messages per user"
    )
    parser.add_argument(
        "--print-credentials",
        action="store_true",
        help="print one authorized-user JSON per seeded user on stdout once listening",
    )
    parser.add_argument(
        "--consent-page",
        action="store_true",
        help="show the consent page instead of auto-approving authorization requests",
    )
    quota = parser.add_argument_group("quota")
    quota.add_argument(
        "--quota",
        choices=[r.value for r in QuotaRegime],
        help="enforce per-user quota: legacy (250 units/s) or per_minute (6,000 units/min)",
    )
    quota.add_argument("--quota-units", type=_non_negative_int, help="override units per window")
    quota.add_argument("--quota-window", type=float, help="override the window in seconds")
    quota.add_argument(
        "--quota-error",
        choices=[s.value for s in RateLimitStyle],
        default=RateLimitStyle.HTTP_429.value,
        help="status for exceeded quota: 429 rateLimitExceeded or 403 userRateLimitExceeded",
    )
    quota.add_argument(
        "--max-concurrent", type=_non_negative_int, help="per-user concurrent request cap"
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--fault-seed", default="0", help="seed for fault decisions")
    faults.add_argument("--error-rate", type=_rate, default=0.0, help="share of 500/503 answers")
    faults.add_argument("--drop-rate", type=_rate, default=0.0, help="share of dropped connections")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="latency added per call")
    faults.add_argument(
        "--after-commit-rate",
        type=_rate,
        default=0.0,
        help="share of sends that commit and then fail (tests exactly-once send)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    quota = None
    if args.quota or args.max_concurrent is not None:
        quota = QuotaConfig(
            regime=QuotaRegime(args.quota or QuotaRegime.LEGACY.value),
            units_per_window=args.quota_units,
            window_seconds=args.quota_window,
            style=RateLimitStyle(args.quota_error),
            max_concurrent_per_user=args.max_concurrent,
        )
        if not args.quota:
            quota.units_per_window = 10**12  # only the concurrency cap was asked for
    faults = None
    if args.error_rate or args.drop_rate or args.latency_ms or args.after_commit_rate:
        faults = FaultConfig(
            seed=args.fault_seed,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            latency_ms=args.latency_ms,
            after_commit_rate=args.after_commit_rate,
        )
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        users=args.users,
        messages_per_user=args.messages,
        auto_approve=not args.consent_page,
        quota=quota,
        faults=faults,
    )


async def _serve(config: EmulatorConfig, print_credentials: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with run_emulator(config) as emu:
        sys.stderr.write(f"emulator listening on {emu.base_url}" + "\n")
        if print_credentials:
            for email in emu.users:
                sys.stdout.write(json.dumps(emu.authorized_user_info(email)) + "\n")
            sys.stdout.flush()
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    # Diagnostics go to stderr so stdout carries only the credential lines.
    configure_logging("console")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"connector emulator: {exc}" + "\n")
        return 2
    try:
        asyncio.run(_serve(config, args.print_credentials))
    except OSError as exc:
        sys.stderr.write(f"connector emulator: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0
