"""The README's demo walkthrough pastes as-is: `connector demo` prints one `export` line, and the
README's bash block, run after it in a fresh shell, succeeds step by step (no placeholders)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _walkthrough_block() -> str:
    """The first ```bash block under the README's demo walkthrough heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Demo walkthrough", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "no bash block in the demo walkthrough"
    return match.group(1)


async def _export_line(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    """Read the banner until its export line; return that line and everything read."""
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout=90)
        assert raw, "the demo exited before printing its export line:\n" + "".join(seen)
        line = raw.decode()
        seen.append(line)
        if line.strip().startswith("export "):
            return line.strip(), "".join(seen)


async def test_readme_walkthrough_pastes_as_is(tmp_path: Path) -> None:
    """Paste the printed export line and the README block into bash: every step succeeds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector", "demo", "--dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        export, banner = await _export_line(proc)
        assert "<id>" not in banner
        for name in ("BASE", "ACC", "U", "O", "O2", "R", "MID", "OTHER", "DEMO", "PATH"):
            assert f" {name}=" in export, name
        script = f"set -euo pipefail\n{export}\n{_walkthrough_block()}"
        # a shell without the venv on PATH: the export line must be enough
        shell_env = {**env, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        walk = await asyncio.create_subprocess_exec(
            "bash", "-c", script, cwd=tmp_path, env=shell_env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(walk.communicate(), timeout=120)
        output = out.decode() + err.decode()
        assert walk.returncode == 0, output
        assert '"SENT"' in output  # the draft was sent
        assert "consent.not_covering" in output  # the refused read
        assert '"authentic": true' in output  # the reviewer's verify
        assert "OK:" in output  # the offline audit verify
        assert "Traceback" not in output
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), timeout=30)
