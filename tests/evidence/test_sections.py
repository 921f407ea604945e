"""The pack's code-derived sections: they follow the code's tables and name paths that exist."""

from __future__ import annotations

from pathlib import Path

from connector.accounts import scopes
from connector.evidence.collect import (
    ROOT,
    SCREENSHOTS,
    THREAT_MODEL,
    rules_section,
    scope_section,
    threat_model,
)
from connector.evidence.controls import CONTROLS, WHY_NOT_NARROWER
from connector.evidence.suites import SuiteStatus, run_suites
from connector.policy.rules import GRANTS


def test_every_path_the_controls_name_exists() -> None:
    """Each control's code and test paths are files in this repository."""
    missing = [p for c in CONTROLS for p in (*c.code, *c.tests) if not (ROOT / p).is_file()]
    assert missing == []
    assert all(c.code and c.tests for c in CONTROLS)
    assert len({c.requirement for c in CONTROLS}) == len(CONTROLS)


def test_every_scope_that_can_be_requested_says_why_no_narrower_one_does() -> None:
    """The scope section covers every scope a link can ask for, with the code's purpose text."""
    requestable = set(scopes.scopes_for(scopes.Feature))
    assert requestable == set(WHY_NOT_NARROWER)
    rows = scope_section()
    assert {r["scope"] for r in rows} == requestable
    assert all(r["purpose"] == scopes.SCOPE_PURPOSES[r["scope"]] for r in rows)


def test_the_rules_section_is_the_grants_table() -> None:
    """One row per grant, in the table's order, with its operations and purposes."""
    section = rules_section()
    assert [g["name"] for g in section["grants"]] == [g.name for g in GRANTS]
    first = section["grants"][0]
    assert first["operations"] == sorted(o.value for o in GRANTS[0].operations)
    assert "advertising" in section["forbidden_purposes"]


def test_the_threat_model_and_screenshots_are_found() -> None:
    """The STRIDE table is read from the docs; the consent screenshots exist to be copied."""
    model = threat_model(ROOT)
    assert model["path"] == THREAT_MODEL
    assert model["header"][0] == "Threat"
    assert len(model["rows"]) >= 10
    assert all((ROOT / source).is_file() for source, _ in SCREENSHOTS)
    assert threat_model(Path("/nonexistent"))["rows"] == []


def test_the_suites_run_and_every_test_is_named() -> None:
    """A real pytest run of a policy suite: counts and names from its JUnit report."""
    result = run_suites(("tests/policy/test_rules_pinned.py",))
    assert result["status"] == SuiteStatus.PASSED
    assert result["total"] == result["counts"]["passed"] == len(result["tests"]) > 0
    assert all(t["name"].startswith("tests.policy.test_rules_pinned::") for t in result["tests"])
    absent = run_suites(("tests/policy/no_such_suite.py",))
    assert absent["status"] == SuiteStatus.UNAVAILABLE
