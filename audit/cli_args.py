"""Argument handling the `audit` subcommands share, for people at a terminal.

- `--db` falls back to CONNECTOR_AUDIT_DATABASE_URL, the variable the service reads, so the
  command works against the service's log without repeating the URL;
- an enum value that is not in the vocabulary is refused with the list of valid ones, an ISO time
  that does not parse is said as such (a time without an offset is UTC);
- `--as-reviewer` says who runs the command (recorded in the log); `--actor-id` is a filter.
  The old `--actor` spelling still works but is not offered, being easy to mistake for the filter;
- an export counts what it wrote: progress every PROGRESS_EVERY events and a summary, on stderr
  (stdout is the data);
- a reader that goes away (`| head`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from audit.records import StoredEvent

DB_VARIABLE = "CONNECTOR_AUDIT_DATABASE_URL"
PROGRESS_EVERY = 10_000
E = TypeVar("E", bound=StrEnum)


def enum_arg(cls: type[E]) -> Callable[[str], E]:
    """An argparse `type` for `cls` whose error lists every valid value."""

    def parse(text: str) -> E:
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {valid}") from None

    parse.__name__ = cls.__name__  # argparse names the type in its message
    return parse


def iso_time(text: str) -> datetime:
    """An argparse `type`: an ISO date or time, in UTC (assumed when it names no offset)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help=f"audit log URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: "
        f"${DB_VARIABLE})",
    )
    parser.add_argument(
        "--as-reviewer",
        dest="actor",
        metavar="REVIEWER_ID",
        help="who runs this command, recorded in the log (default: the system actor "
        "audit-cli); not a filter, see --actor-id",
    )
    parser.add_argument("--actor", dest="actor", help=argparse.SUPPRESS)  # the old spelling


def resolve_db(args: argparse.Namespace) -> str | None:
    """--db, else the service's variable; None (with a message on stderr) when neither is set."""
    url: str | None = args.db or os.environ.get(DB_VARIABLE) or None
    if url is None:
        sys.stderr.write(f"audit: name the audit log with --db URL or set {DB_VARIABLE}\n")
    args.db = url
    return url


async def counted(
    events: AsyncIterator[StoredEvent], tally: list[int], say: Callable[[str], None]
) -> AsyncIterator[StoredEvent]:
    """`events`, counting them into tally[0] and saying so every PROGRESS_EVERY."""
    async for event in events:
        tally[0] += 1
        if tally[0] % PROGRESS_EVERY == 0:
            say(f"exported {tally[0]} events so far")
        yield event


def quiet_broken_pipe() -> None:
    """The reader closed the pipe: point stdout at /dev/null so the interpreter's final flush
    does not report it either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
