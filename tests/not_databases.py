"""What the commands' bad-target tests hand them instead of a database (a text file, a refusing
PostgreSQL server), and a snapshot of a directory to prove a command left it exactly as it was.
Used by tests/audit/test_cli_bad_targets.py and tests/test_cli_bad_databases.py."""

from __future__ import annotations

import socket
from pathlib import Path


def text_file(path: Path) -> Path:
    """A file of plain text, long enough to be read as a (non-)database header."""
    path.write_text("these are notes, not a database\n" * 200)
    return path


def text_file_url(path: Path, scheme: str = "sqlite") -> str:
    """A SQLite URL to a text file made at `path`."""
    return f"{scheme}:///{text_file(path)}"


def directory_url(path: Path, scheme: str = "sqlite") -> str:
    """A SQLite URL to a directory made at `path`."""
    path.mkdir()
    return f"{scheme}:///{path}"


def refused_postgres_url(user: str) -> str:
    """A PostgreSQL URL (with a password the error must not repeat) on a loopback port nobody
    listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://{user}:s3cret-pw@127.0.0.1:{port}/{user}"


def tree_state(directory: Path) -> dict[str, tuple[bool, int, int, bytes]]:
    """Every entry under `directory` with its kind, size, mtime and content."""
    found = {}
    for path in sorted(directory.rglob("*")):
        stat = path.stat()
        content = path.read_bytes() if path.is_file() else b""
        found[str(path.relative_to(directory))] = (path.is_dir(), stat.st_size, stat.st_mtime_ns,
                                                   content)  # fmt: skip
    return found
