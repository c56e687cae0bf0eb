"""Making the database unavailable to printhook for a moment, on either dialect.

PostgreSQL: printhook connects through a TCP proxy on loopback; stopping the proxy cuts every
connection and refuses new ones, like a database failover. SQLite: another connection holds the
write lock (BEGIN IMMEDIATE) while printhook's busy timeout is shortened to 100 ms, so writes
fail at once with "database is locked" instead of waiting the production 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

import app.db


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@dataclass
class Outage:
    """`url` is what printhook should use; `begin()`/`end()` take the database away and back."""

    url: str
    proxy: TcpProxy | None = None
    sqlite_path: str | None = None
    _holder: sqlite3.Connection | None = None

    async def begin(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            return
        assert self.sqlite_path is not None
        self._holder = sqlite3.connect(self.sqlite_path, isolation_level=None)
        self._holder.execute("BEGIN IMMEDIATE")

    async def end(self) -> None:
        if self.proxy is not None:
            await self.proxy.start()
            return
        assert self._holder is not None
        self._holder.execute("ROLLBACK")
        self._holder.close()
        self._holder = None


@contextlib.asynccontextmanager
async def database_outage(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Outage]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        monkeypatch.setattr(app.db, "SQLITE_BUSY_TIMEOUT_MS", 100)
        assert url.database is not None
        yield Outage(url=database_url, sqlite_path=url.database)
        return
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield Outage(
            url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            proxy=proxy,
        )
    finally:
        if proxy.running:
            await proxy.stop()
