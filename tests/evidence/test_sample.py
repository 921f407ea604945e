"""The sample pack committed under docs/evidence-sample/ verifies against the demo log beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.cli import main as audit_main
from connector.evidence.collect import ROOT

SAMPLE = ROOT / "docs" / "evidence-sample"
SAMPLE_LOG = ROOT / "docs" / "evidence-sample-log"


def test_the_committed_sample_pack_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed by the demo's pinned key, every file intact, figures equal to its log's."""
    log = tmp_path / "log"
    shutil.copytree(SAMPLE_LOG, log)  # verify-pack records its check in the log: use a copy
    code = audit_main(["verify-pack", str(SAMPLE), "--db", f"sqlite:///{log / 'audit.db'}",
                       "--trusted-keys", str(log / "audit-trusted-keys.pem"),
                       "--witness", str(log / "audit-witness.jsonl")])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert text.startswith("VALID")
