"""Plain helpers for tests: settings, a running app, loopback servers, waiting, DB reads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.main import create_app

SHOP_KEY = "test-shop-key-0123456789"
AUTH = {"Authorization": f"Bearer {SHOP_KEY}"}

T = TypeVar("T")


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: no .env file, workers off unless asked for."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_keys": SHOP_KEY,
        "run_workers": False,
        "public_base_url": "http://printhook.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


VENDOR_PATHS = ("/webhooks/printmotor", "/callbacks/printess/")


@asynccontextmanager
async def running_app(
    settings: Settings, *, apply: bool = True
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and an in-process client for it.

    Tests run without background work; with `apply` (the default) the client runs the real
    applier after every acknowledged vendor request, so a test can assert on the applied
    state right after posting. Tests of the ack path itself pass `apply=False`.
    """
    app = create_app(settings)

    async def applied(response: httpx.Response) -> None:
        path = response.request.url.path
        if apply and response.status_code == 200 and any(p in path for p in VENDOR_PATHS):
            await app.state.applier.drain()

    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://printhook.test",
                event_hooks={"response": [applied]},
            ) as c:
                yield app, c
    finally:
        await sqlite_threads_finished()


async def sqlite_threads_finished(timeout: float = 5.0) -> None:
    """Wait for aiosqlite's worker threads to end while this test's event loop still runs.

    A connection attempt that failed (an unreachable SQLite path) ends its thread by handing
    the error to the loop; if the loop closed first, the thread's RuntimeError would surface
    in whichever test runs next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        "_connection_worker_thread" in thread.name for thread in threading.enumerate()
    ):
        await asyncio.sleep(0.01)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1 from a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


async def wait_for(
    condition: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def db_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on its own engine, for asserting on rows independently of the app."""
    engine = create_engine(make_settings(database_url))
    factory: async_sessionmaker[AsyncSession] = create_session_factory(engine)
    try:
        async with factory() as session:
            yield session
    finally:
        await engine.dispose()
