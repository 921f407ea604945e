"""`connector token mint`: a caller bearer token for development, signed with
`CONNECTOR_JWT_SECRET` exactly as the host platform would sign one."""

from __future__ import annotations

import argparse
import sys

from connector.settings import Settings
from connector.web.auth import Role, mint_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    mint = sub.add_parser("mint", help="print a signed bearer token (HS256)")
    mint.add_argument("--sub", required=True, help="the caller's platform id")
    mint.add_argument("--role", required=True, choices=[r.value for r in Role])
    mint.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.ttl < 1:
        sys.stderr.write("--ttl must be at least 1 second\n")
        return 2
    try:
        token = mint_token(settings, args.sub, Role(args.role), ttl_seconds=args.ttl)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(token + "\n")
    return 0
