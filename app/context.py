"""What a running printhook process shares between requests and background work."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.inbound.ingest import InboundStore

# Vendor calls: connect fast, but give a slow render status a while to answer.
VENDOR_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)


def _instance_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # The one shared HTTP client for every vendor call.
    http: httpx.AsyncClient
    # The ack path's one INSERT.
    inbound: InboundStore
    # Identifies this process as the holder of row leases.
    instance_id: str = field(default_factory=_instance_id)
    # The applier's lanes in this process, woken right after each ack.
    arrival_listeners: set[asyncio.Event] = field(default_factory=set)

    def notify_arrival(self) -> None:
        for listener in self.arrival_listeners:
            listener.set()

    @classmethod
    def create(cls, settings: Settings) -> AppContext:
        engine = create_engine(settings)
        http = httpx.AsyncClient(
            timeout=VENDOR_TIMEOUT,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            headers={"User-Agent": "printhook"},
            follow_redirects=False,
        )
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            http=http,
            inbound=InboundStore(settings, engine),
        )

    async def aclose(self) -> None:
        await self.inbound.aclose()
        await self.http.aclose()
        await self.engine.dispose()
