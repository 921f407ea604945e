"""`connector` command line: demo, serve, emulator, token minting, vault key rotation.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`,
so this file only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("connector.demo", "run the emulator, the service on SQLite and a linked demo account"),
    "serve": ("connector.web.cli", "run the HTTP service (settings from CONNECTOR_* variables)"),
    "check-config": (
        "connector.config_cli",
        "show the settings serve would run with, and every problem with them",
    ),
    "emulator": ("connector.emulator.cli", "run the local Gmail API + Google OAuth emulator"),
    "token": ("connector.web.token_cli", "mint a caller bearer token for development"),
    "vault": ("connector.accounts.vault_cli", "token vault: rotate encryption keys"),
    "migrate": ("connector.db_cli", "apply database migrations"),
    "retention": (
        "connector.retention_cli",
        "run retention once, as the service does (consents, dormant accounts, audit segments)",
    ),
    "evidence": (
        "connector.evidence.cli",
        "write the assessors' evidence pack (signed; check it with `audit verify-pack`)",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; only the chosen subcommand's module is imported (keeps start-up fast)."""
    parser = argparse.ArgumentParser(
        prog="connector",
        description="Gmail Limited-Use inbox connector with access auditing.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(args_list)
    try:
        result: int = args._module.run(args)
    except ValueError as exc:
        # Bad settings met by any command: the message, exit 2, no traceback. Looked up rather
        # than imported so that commands which never read settings do not load pydantic.
        settings = sys.modules.get("connector.settings")
        if settings is None or not isinstance(exc, settings.SettingsError):
            raise
        sys.stderr.write(f"{exc}\n")
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
