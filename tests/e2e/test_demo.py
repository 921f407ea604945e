"""`connector demo --smoke`: the whole walkthrough through the real link flow, exit code 0."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def test_demo_smoke_walkthrough(tmp_path: Path) -> None:
    """The demo links alice, composes, reads, sends, shows a consented and a refused read."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector", "demo", "--smoke", "--dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text
    for step in ("read:", "compose:", "send:", "consented support read:", "refused read:",
                 "access history:", "audit verify: ok"):  # fmt: skip
        assert f"ok  {step}" in text, text
    assert (tmp_path / "demo" / "audit.db").exists()
