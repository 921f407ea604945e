"""The reviewer console's "Download evidence pack": a zip that `audit verify-pack` accepts
against the running service's audit log and its pinned key."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from audit import QueryFilter
from audit.vocab import Action
from connector.web.app import AUDIT
from connector.web.auth import Role
from tests.webclient.conftest import Live, signed_in


def test_the_console_button_downloads_a_pack_that_verifies(
    live: Live, context: Any, tmp_path: Path
) -> None:
    page = signed_in(live, context, "rev-rhea", Role.REVIEWER)
    page.get_by_label("First day (empty: from the start)").fill("2000-01-01")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download evidence pack").click()
    download = info.value
    assert download.suggested_filename.startswith("evidence-")
    assert download.suggested_filename.endswith(".zip")
    pack = tmp_path / "pack"
    with zipfile.ZipFile(download.path()) as archive:
        archive.extractall(pack)
    assert (pack / "index.html").is_file()
    settings = live.settings
    done = subprocess.run(
        [sys.executable, "-m", "audit", "verify-pack", str(pack),
         "--db", settings.audit_database_url,
         "--trusted-keys", str(settings.audit_trusted_keys_file)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    log = live.app[AUDIT]
    made = live.call(log.query(QueryFilter(action=Action.AUDIT_EXPORTED, actor_id="rev-rhea")))
    assert len(made) == 1
