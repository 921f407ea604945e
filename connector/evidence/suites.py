"""Run the policy and gate test suites at generation time and read their JUnit XML result.

The pack states what the suites said on the day it was made: counts and every test's name and
outcome. The run is a child `pytest` process writing JUnit XML into a temporary directory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from enum import StrEnum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUITES: tuple[str, ...] = ("tests/policy",)  # the rules tables, properties, the gate, the plans
TIMEOUT_S = 600


class SuiteStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not run at generation time (--skip-tests): said so in the pack
    UNAVAILABLE = "unavailable"  # the suites are not installed beside the code


def _outcome(case: ET.Element) -> str:
    for child, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        if case.find(child) is not None:
            return name
    return "passed"


def parse_junit(text: str) -> dict[str, Any]:
    root = ET.fromstring(text)  # noqa: S314 (written by the pytest child this module started)
    cases = [
        {"name": f"{case.get('classname', '')}::{case.get('name', '')}", "outcome": _outcome(case)}
        for case in root.iter("testcase")
    ]
    counts = {k: sum(1 for c in cases if c["outcome"] == k) for k in
              ("passed", "failed", "error", "skipped")}  # fmt: skip
    failed = counts["failed"] or counts["error"]
    return {
        "status": (SuiteStatus.FAILED if failed or not cases else SuiteStatus.PASSED).value,
        "total": len(cases),
        "counts": counts,
        "tests": cases,
    }


def run_suites(suites: tuple[str, ...] = SUITES, *, root: Path = ROOT) -> dict[str, Any]:
    """Run `suites` (paths under `root`) once; their result as the pack records it."""
    missing = [s for s in suites if not (root / s).exists()]
    if missing:
        return {"status": SuiteStatus.UNAVAILABLE.value, "suites": list(suites),
                "detail": f"not found beside the code: {', '.join(missing)}"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="evidence-junit-") as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   f"--junitxml={report}", *suites]  # fmt: skip
        done = subprocess.run(  # noqa: S603 (our interpreter, our arguments)
            command, cwd=root, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        if not report.exists():
            tail = (done.stdout + done.stderr)[-400:]
            detail = f"pytest wrote no report (exit {done.returncode}): {tail}"
            return {"status": SuiteStatus.FAILED.value, "suites": list(suites), "detail": detail}
        result = parse_junit(report.read_text(encoding="utf-8"))
    return {**result, "suites": list(suites), "exit_code": done.returncode}


def skipped(
    suites: tuple[str, ...] = SUITES, *, detail: str = "not run at generation time (--skip-tests)"
) -> dict[str, Any]:
    return {"status": SuiteStatus.SKIPPED.value, "suites": list(suites), "detail": detail}
