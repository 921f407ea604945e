"""Architecture rules checked on the import graph (AST), not by review."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATE = "connector.policy.gate"


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every absolute module name the file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def _hits(names: set[str], target: str) -> set[str]:
    return {n for n in names if n == target or n.startswith(target + ".")}


def test_walker_sees_the_gate_import() -> None:
    """The check is live: it finds the gate's own import of connector.gmail."""
    modules = _modules("connector")
    assert _hits(_imports(GATE, modules[GATE]), "connector.gmail")


GMAIL_ERRORS = "connector.gmail.errors"  # catching Gmail's errors is not calling Gmail
# Pub/Sub brings Gmail's push notices (address, historyId), reached as the deployment: not Gmail.
NOT_THE_CLIENT = (GMAIL_ERRORS, "connector.gmail.pubsub")


def _gmail_client_hits(names: set[str]) -> set[str]:
    """Imports that reach the Gmail client (anything in connector.gmail but its errors)."""
    hits = _hits(names, "connector.gmail")
    deep = {h for h in hits if h != "connector.gmail"}
    client = {
        h for h in deep if not any(h == own or h.startswith(own + ".") for own in NOT_THE_CLIENT)
    }
    if not deep:  # `import connector.gmail`: the package itself
        client |= hits
    return client


def test_only_the_gate_imports_the_gmail_client() -> None:
    """No module under connector/ or audit/ except the gate (and the client itself) imports it;
    its error classes (`connector.gmail.errors`) may be imported by anyone, to catch them."""
    offenders = {}
    for package in ("connector", "audit"):
        for module, path in _modules(package).items():
            if module in {GATE, "connector.gmail"} or module.startswith("connector.gmail."):
                continue
            hits = _gmail_client_hits(_imports(module, path))
            if hits:
                offenders[module] = sorted(hits)
    assert offenders == {}


def test_catching_gmail_errors_is_not_calling_gmail() -> None:
    """The rule above tells the client from its errors, both ways."""
    assert _gmail_client_hits({"connector.gmail", "connector.gmail.errors"}) == set()
    assert _gmail_client_hits({"connector.gmail", "connector.gmail.GmailClient"}) == {
        "connector.gmail.GmailClient"
    }
    assert _gmail_client_hits({"connector.gmail"}) == {"connector.gmail"}


def test_audit_stands_alone() -> None:
    """The audit package never imports the connector."""
    offenders = {
        module: sorted(_hits(_imports(module, path), "connector"))
        for module, path in _modules("audit").items()
        if _hits(_imports(module, path), "connector")
    }
    assert offenders == {}


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    """`from ..gmail import X` inside connector.web is seen as connector.gmail."""
    probe = tmp_path / "routes.py"
    probe.write_text("from ..gmail import GmailClient\n", encoding="utf-8")
    assert _hits(_imports("connector.web.routes", probe), "connector.gmail")


RECORDER = "connector.policy.recorder"


def _builds_audit_events(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "AuditEvent")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "AuditEvent")
        )
        for node in ast.walk(tree)
    )


def test_only_the_recorder_builds_audit_events() -> None:
    """No module in connector/ but the recorder constructs an AuditEvent (one audit path)."""
    builders = {m for m, p in _modules("connector").items() if _builds_audit_events(p)}
    assert builders == {RECORDER}
