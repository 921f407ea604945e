"""The layering of `connector/`, as a table: which unit may import which, checked on the AST.

A unit is a top-level module (`connector.errors`) or package (`connector.policy`). Imports under
`if TYPE_CHECKING:` are left out: they create no runtime arrow (the error tree names the policy's
`Deny` type that way). Every unit must appear in the table, so a new package is placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_architecture import ROOT, _modules

# The pure core everyone may use: no I/O beyond what its name says, no service objects.
CORE = frozenset(
    {
        "connector.errors",
        "connector.clock",
        "connector.background",
        "connector.grouped",
        "connector.ports",
        "connector.mime",
        "connector.logs",
        "connector.db",
        "connector.settings",
        "connector.settings_sources",
        "connector.gmail_facts",
    }
)
AUDIT = "audit"
GMAIL_ERRORS = "connector.gmail.errors"
# Pub/Sub carries Gmail's push notices (an address and a historyId, never mailbox data) and is
# reached as the deployment, not as a user: its client is a unit of its own, outside the gate.
PUBSUB = "connector.gmail.pubsub"

# unit -> the units (besides itself) it may import. Read top to bottom as the layers, lowest first.
ALLOWED: dict[str, frozenset[str]] = {
    **{core: CORE | {AUDIT} for core in CORE},
    GMAIL_ERRORS: CORE,
    PUBSUB: CORE | {GMAIL_ERRORS, "connector.gmail"},  # builds requests like the Gmail client
    "connector.gmail": CORE | {GMAIL_ERRORS},  # knows nothing of policy, accounts or audit
    "connector.emulator": CORE,  # a stand-in for Google: shares Gmail facts, not our service
    "connector.policy": CORE | {AUDIT, "connector.gmail"},  # only the gate, checked elsewhere
    # GMAIL_ERRORS: sync catches the 404 of a stale history cursor (catching is not calling).
    "connector.accounts": CORE | {AUDIT, GMAIL_ERRORS, "connector.policy"},
    # GMAIL_ERRORS: the inbox catches Gmail's sending limit to report it (catching, not calling).
    "connector.inbox": CORE | {AUDIT, GMAIL_ERRORS, "connector.policy"},
    # Delivery of the change feed to the platform (webhooks outbox); decided and audited.
    "connector.delivery": CORE | {AUDIT, "connector.policy", "connector.accounts"},
    # The live mailbox's background work: watches, Pub/Sub pull, polling, leases.
    "connector.live": CORE
    | {AUDIT, GMAIL_ERRORS, PUBSUB, "connector.policy", "connector.accounts"}
    | {"connector.delivery"},
    # Data rights (export, deletion) and retention jobs over what the connector holds.
    "connector.rights": CORE | {AUDIT, "connector.policy", "connector.accounts", "connector.inbox"},
    # The assessors' evidence pack: reads code tables, the audit log and the stores.
    "connector.evidence": CORE
    | {AUDIT, "connector.policy", "connector.accounts", "connector.rights"},
    "connector.testing": CORE
    | {AUDIT, "connector.policy", "connector.inbox", "connector.accounts"},
    "connector.wiring": CORE
    | {AUDIT, "connector.policy", "connector.accounts", "connector.inbox", "connector.testing"}
    | {PUBSUB, "connector.delivery", "connector.live", "connector.rights"},
    "connector.web": CORE
    | {AUDIT, GMAIL_ERRORS, "connector.policy", "connector.accounts", "connector.inbox"}
    | {"connector.delivery", "connector.live", "connector.rights", "connector.evidence"}
    | {"connector.wiring", "connector.webclient"},  # the app factory mounts the web client
    # The browser pages reuse web's authentication, route policy, problem mapping and handlers:
    # the one arrow back up, from the only package web mounts (through `setup_webclient`).
    "connector.webclient": CORE
    | {AUDIT, "connector.policy", "connector.accounts", "connector.inbox", "connector.web"}
    | {"connector.wiring"},
    # Command-line entry points sit on top and may use anything.
    **{
        cli: CORE
        | {AUDIT, "connector.web", "connector.wiring", "connector.emulator"}
        | {"connector.policy", "connector.accounts", "connector.inbox", "connector.testing"}
        | {"connector.demo_dir", "connector.live", "connector.rights", "connector.evidence"}
        for cli in (
            "connector.demo",
            "connector.db_cli",
            "connector.config_cli",
            "connector.retention_cli",
        )
    },
    "connector.demo_dir": frozenset(),  # the demo's state directory: the file system only
    # Migrations are plain alembic scripts: they must not change when a model does.
    "connector.migrations": frozenset(),
    "connector.__main__": frozenset(),  # dispatches by module name (importlib), imports none
    "connector": frozenset(),  # the package's __init__
}


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "connector":
        return parts[0]
    for own in (GMAIL_ERRORS, PUBSUB):
        if module == own or module.startswith(own + "."):
            return own
    return ".".join(parts[:2])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _runtime_imports(path: Path) -> set[str]:
    """Absolute module names imported at run time (with `from x import y`, both x and x.y)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                # `from connector.gmail import errors` imports the submodule, not the package's
                # __init__ exports: count the submodule alone.
                names.add(full if _is_module(full) else node.module)
                names.add(full)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return names


def _arrows() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = {}
    for module, path in _modules("connector").items():
        source = _unit(module)
        targets = arrows.setdefault(source, set())
        for name in _runtime_imports(path):
            if not (name == "connector" or name.startswith(("connector.", "audit"))):
                continue
            target = _unit(name)
            if target == "connector":
                continue  # `from connector import errors` names the submodule, seen on its own
            if target != source:
                targets.add(target)
    return arrows


def test_every_unit_is_placed_in_the_table() -> None:
    """A new module or package under connector/ must be given its place in the layering."""
    assert set(_arrows()) - set(ALLOWED) == set()


def test_imports_follow_the_layering_table() -> None:
    """No unit imports a unit the table does not allow (arrows only point down)."""
    wrong = {
        source: sorted(targets - ALLOWED[source])
        for source, targets in _arrows().items()
        if source in ALLOWED and targets - ALLOWED[source]
    }
    assert wrong == {}


def test_the_table_is_live() -> None:
    """The walker sees real arrows (the gate's import of the client, web's use of wiring)."""
    arrows = _arrows()
    assert "connector.gmail" in arrows["connector.policy"]
    assert "connector.wiring" in arrows["connector.web"]
    assert "connector.policy" in arrows["connector.accounts"]


def test_type_checking_imports_are_not_arrows(tmp_path: Path) -> None:
    """An import under `if TYPE_CHECKING:` is skipped; one in its `else:` is seen."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from connector.web import app\n"
        "else:\n    from connector.wiring import Services\n",
        encoding="utf-8",
    )
    names = _runtime_imports(probe)
    assert "connector.web" not in names
    assert "connector.wiring" in names


def test_only_the_clock_reads_the_wall_clock() -> None:
    """No module in connector/ (outside the emulator, which plays Google) reads "now" itself."""
    readers = {}
    for module, path in _modules("connector").items():
        if module == "connector.clock" or module.startswith("connector.emulator"):
            continue
        text = path.read_text(encoding="utf-8")
        found = [
            call
            for call in ("datetime.now(", "time.time()", "date.today(", "utcnow(")
            if call in text
        ]
        if found:
            readers[module] = found
    assert readers == {}
    assert ROOT.joinpath("connector", "clock.py").is_file()
