"""The demo's state directory: claimed for one run, emptied only if the demo made it.

`connector demo --dir PATH` used to delete PATH recursively, so `--dir ~` wiped a home
directory. Now a directory is the demo's only if it carries the marker file the demo wrote when
it created (or adopted an empty) directory; anything else is refused. While a demo runs it holds
an exclusive lock on the directory, so a second run (a `demo --smoke` next to a running `demo`)
is refused instead of wiping the first one's databases. Emptying never follows a symbolic link:
links are removed, never what they point to, and a PATH that is itself a link is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

MARKER = ".connector-demo"
LOCK = ".connector-demo.lock"
MARKER_TEXT = "state directory of `connector demo`; emptied at each run\n"


class DemoDirError(Exception):
    """The directory cannot be used by the demo; the message says why and what to do."""


def _is_marked(directory: Path) -> bool:
    marker = directory / MARKER
    return marker.is_file() and not marker.is_symlink()


def _check(directory: Path) -> None:
    if directory.is_symlink():
        raise DemoDirError(
            f"{directory} is a symbolic link; pass the real directory to --dir "
            "(the demo never empties a directory through a link)"
        )
    if not directory.exists():
        return
    if not directory.is_dir():
        raise DemoDirError(f"{directory} exists and is not a directory; choose another --dir")
    if not _is_marked(directory) and any(directory.iterdir()):
        raise DemoDirError(
            f"{directory} is not empty and was not created by `connector demo` (no {MARKER} "
            "file), so the demo will not empty it; pass a new or empty directory to --dir"
        )


def _empty(directory: Path) -> None:
    """Remove everything in `directory` but the marker and the lock, following no link."""
    for entry in directory.iterdir():
        if entry.name in (MARKER, LOCK):
            continue
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
        else:
            shutil.rmtree(entry)  # removes links inside it as links (fd-based on Linux)


@contextlib.contextmanager
def claim(directory: Path) -> Iterator[Path]:
    """Hold `directory` for one demo run: checked, locked, emptied; created if missing."""
    _check(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check(directory)  # it may have changed between the check and mkdir
    if not _is_marked(directory):
        (directory / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise DemoDirError(
                f"another `connector demo` (pid {holder}) is using {directory}; stop it or "
                "pass another --dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _empty(directory)
        yield directory
    finally:
        os.close(fd)  # releases the lock
