"""The aiogoogle leg of scripts/bench_gmail.py, run in the benchmark's own venv (.venv-bench).

aiogoogle is a peer to compare with, not a dependency of the project, so this script imports
nothing from `connector`: it reads its job as JSON on stdin (the emulator's Gmail endpoint, an
access token, the message ids, the metadata headers, the path of Gmail's discovery document),
fetches every message's metadata the way aiogoogle's documentation does it (one
`messages.get` request per id, all handed to `as_user` at once, which sends them concurrently
over its aiohttp session), and prints one JSON line: {"seconds": ..., "messages": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogoogle import Aiogoogle  # type: ignore[import-not-found]
from aiogoogle.auth.creds import UserCreds  # type: ignore[import-not-found]
from aiogoogle.resource import GoogleAPI  # type: ignore[import-not-found]


async def fetch(job: dict[str, Any]) -> dict[str, Any]:
    with open(job["discovery"], encoding="utf-8") as f:
        discovery = json.load(f)
    discovery["rootUrl"] = job["endpoint"]  # the emulator instead of gmail.googleapis.com
    gmail = GoogleAPI(discovery)
    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    creds = UserCreds(access_token=job["token"], expires_at=expires)
    ids: list[str] = job["ids"]
    async with Aiogoogle(user_creds=creds) as aiogoogle:
        requests = [
            gmail.users.messages.get(
                userId="me", id=mid, format="metadata", metadataHeaders=job["headers"]
            )
            for mid in ids
        ]
        started = time.perf_counter()
        messages = await aiogoogle.as_user(*requests)
        elapsed = time.perf_counter() - started
    assert [m["id"] for m in messages] == ids
    return {"seconds": elapsed, "messages": len(messages)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(fetch(json.load(sys.stdin)))))
