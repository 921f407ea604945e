"""The connector database (PostgreSQL) unreachable: reads answer 503 problem+json with
Retry-After (like the audit store), and the service recovers without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connector.demo import running_demo


class Proxy:
    """A TCP relay on a fixed loopback port that can be cut (connections dropped, port
    closed) and restored, standing in for the database server going down and coming back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._open -= {writer, up_writer}


@pytest.fixture
async def pg_proxy(pg_database: str) -> AsyncIterator[tuple[Proxy, str]]:
    """A relay to a fresh database; yields it and the database URL through it."""
    host_port, name = pg_database.rsplit("@", 1)[1].split("/", 1)
    host, port = host_port.split(":")
    proxy = Proxy(host, int(port))
    await proxy.up()
    user = pg_database.split("//", 1)[1].split("@", 1)[0]
    yield proxy, f"postgresql://{user}@127.0.0.1:{proxy.port}/{name}"
    with contextlib.suppress(AssertionError):
        await proxy.down()


async def test_database_down_answers_503_then_recovers(
    tmp_path: Path, pg_proxy: tuple[Proxy, str]
) -> None:
    """Database cut: 503 database-unavailable with Retry-After; restored: 200, same process."""
    proxy, url = pg_proxy
    async with running_demo(tmp_path / "demo", 0, overrides={"database_url": url}) as demo:
        path = f"/v1/accounts/{demo.account_id}/messages?max_results=2"
        status, _ = await demo.call("GET", path, "alice")
        assert status == 200
        await proxy.down()
        for _ in range(3):  # the pool's stale connections and new connects alike
            async with demo.http.get(demo.base + path, headers=demo.auth("alice")) as r:
                body = await r.json(content_type=None)
                assert r.status == 503, body
                assert r.content_type == "application/problem+json"
                assert body["type"].endswith("/database-unavailable"), body
                assert int(r.headers["Retry-After"]) >= 1
        status, ready = await demo.call("GET", "/readyz", "alice")
        assert status == 503
        assert ready["checks"]["database"].startswith("unavailable")
        await proxy.up()
        status, page = await demo.call("GET", path, "alice")
        assert status == 200, page
        assert page["messages"]
