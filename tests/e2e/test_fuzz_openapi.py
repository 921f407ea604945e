"""Schema-driven fuzzing (schemathesis) of the served OpenAPI document, once per role: any 5xx,
any status code or content type the document does not list for the operation, or a response
body that does not match its documented schema, fails the test.

The service and the emulator run on loopback in a thread of their own (schemathesis calls with
`requests`, which would block the event loop serving them), on SQLite, as `connector serve` listens
(`ServiceRunner`). Examples per operation are bounded so the whole run stays well under a minute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import ALICE, running_stack

EXAMPLES = 25  # per operation and role
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ROLE_CALLERS = {"user": "alice", "operator": "op1", "reviewer": "rev", "admin": "adm"}


@contextmanager
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The e2e stack served from a background event loop: (base URL, token per caller)."""
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        found["stop"] = (asyncio.get_running_loop(), stop)
        try:
            # change-feed streams end at once: every fuzzed call gets a whole answer
            async with running_stack(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                     feed_stream_seconds=0.05) as s:  # fmt: skip
                found["base"], found["tokens"] = s.base, dict(s.tokens)
                ready.set()
                await stop.wait()
        finally:
            ready.set()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by the waiting test
            found["error"] = exc

    thread = threading.Thread(target=run, name="fuzz-stack", daemon=True)
    thread.start()
    ready.wait(60)
    if "base" not in found:
        raise RuntimeError(f"the stack did not start: {found.get('error')!r}")
    try:
        yield found["base"], found["tokens"]
    finally:
        loop, stop = found["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def _fuzz(schema: Any, base: str, token: str | None, roles: set[str] | None) -> list[str]:
    """Fuzz every operation whose x-roles include one of `roles` (None: the open ones)."""
    failures: list[str] = []
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for result in schema.get_all_operations():
        operation = result.ok()
        allowed = operation.definition.raw.get("x-roles")
        if (roles is None) != (allowed is None) or (roles and not roles & set(allowed)):
            continue

        fixed = {n: ALICE for n in ("account_id",) if "{" + n + "}" in operation.path}
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed or None),
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=cases)
        def check(case: Any) -> None:
            response = case.call(base_url=base, session=session, headers=headers, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's first failure
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    return failures


@pytest.mark.timeout(120)
def test_fuzzing_every_role_finds_no_5xx_and_no_undocumented_answer(tmp_path: Path) -> None:
    """Every operation, fuzzed as each role allowed on it (and the open ones with no token),
    answers only documented status codes and content types, never a 5xx."""
    with served(tmp_path) as (base, tokens):
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        failures = _fuzz(schema, base, None, None)
        for role, who in ROLE_CALLERS.items():
            failures += _fuzz(schema, base, tokens[who], {role})
    assert not failures, "\n\n".join(failures)
