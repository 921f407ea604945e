"""Emulator fixtures: a seeded emulator on loopback and an aiohttp session with a bearer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from connector.emulator.server import Emulator, EmulatorConfig, run_emulator

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
GMAIL = "https://www.googleapis.com/auth/gmail."


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with run_emulator(EmulatorConfig(seed="demo", users=3, messages_per_user=20)) as e:
        yield e


@pytest.fixture
def http(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """The root conftest's client session, under the name these tests use."""
    return session


class Api:
    """Tiny Gmail REST helper bound to one user's access token."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession, token: str) -> None:
        self.emu, self.session, self.token = emu, session, token

    def url(self, path: str) -> str:
        return f"{self.emu.base_url}gmail/v1/users/me/{path}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        raw_url: str | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        hdrs = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        async with self.session.request(
            method, raw_url or self.url(path), json=json, params=params, headers=hdrs, data=data
        ) as resp:
            body = await resp.read()
            parsed: Any = None
            if body and resp.content_type.endswith("json"):
                parsed = await resp.json()
            return resp.status, parsed, resp

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", path, **kw)
        return status, body

    async def post(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("POST", path, **kw)
        return status, body


@pytest.fixture
def api(emu: Emulator, http: aiohttp.ClientSession) -> Api:
    return Api(emu, http, emu.issue_tokens(ALICE)["access_token"])


@pytest.fixture
def bob_api(emu: Emulator, http: aiohttp.ClientSession) -> Api:
    return Api(emu, http, emu.issue_tokens(BOB)["access_token"])
