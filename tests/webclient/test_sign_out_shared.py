"""Signing out on one worker or instance ends the session on all of them: the ended session ids
are shared through the connector database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from connector.db import create_engine, migrate
from connector.web.auth import Role, TokenVerifier, mint_token
from connector.webclient.ended import EndedSessions
from connector.webclient.session import Sessions
from tests.webclient.test_units import _Request, _settings


async def test_a_sign_out_on_one_instance_is_refused_on_another(db_url: str) -> None:
    settings = _settings()
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        await migrate(engines[0])
        here, there = (Sessions(settings, TokenVerifier(settings), ended=EndedSessions(e))
                       for e in engines)  # fmt: skip
        session, cookie = here.sign_in(mint_token(settings, "alice", Role.USER))
        request = _Request({"connector_session": cookie})
        assert there.read(request) is not None  # type: ignore[arg-type]
        await here.sign_out(session)
        assert here.read(request) is None  # type: ignore[arg-type]  at once where signed out
        await there.ended.refresh()  # what the other process's loop does every 2 s
        assert there.read(request) is None  # type: ignore[arg-type]
        fresh = Sessions(settings, TokenVerifier(settings), ended=EndedSessions(engines[1]))
        await fresh.ended.refresh()  # a process started later knows it too
        assert fresh.read(request) is None  # type: ignore[arg-type]
        other, other_cookie = here.sign_in(mint_token(settings, "alice", Role.USER))
        await there.ended.refresh()
        assert there.read(_Request({"connector_session": other_cookie})) is not None  # type: ignore[arg-type]
        await here.sign_out(session)  # signing out twice is harmless
    finally:
        for engine in engines:
            await engine.dispose()


async def test_one_session_signed_out_on_two_instances_at_once_is_no_error(db_url: str) -> None:
    """Two tabs on two workers press "sign out" together: both succeed (no duplicate-key
    error from a look-then-insert race) and the session is ended once in the table."""
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        await migrate(engines[0])
        ended = [EndedSessions(e) for e in engines]
        for n in range(5):  # the race needs both lookups before either insert: try a few
            sid = f"sid-{n}"
            await asyncio.gather(*(e.add(sid, 4_000_000_000) for e in ended))
        fresh = EndedSessions(engines[0])
        await fresh.refresh()
        assert all(f"sid-{n}" in fresh for n in range(5))
    finally:
        for engine in engines:
            await engine.dispose()
