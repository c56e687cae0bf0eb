"""The ack path's storage: one `INSERT ... ON CONFLICT DO NOTHING` of the raw bytes.

This is the only special code on the vendors' hot path. On PostgreSQL it runs on a small pool
of plain asyncpg connections in autocommit (one statement, one round trip: SQLAlchemy's
pre-ping and asyncpg's pool reset would triple that); on SQLite through the engine. Every
other write goes through the services, in the applier.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import utcnow
from app.inbound.models import PENDING, InboundEvent


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Arrival:
    """A vendor request that passed authentication, about to be stored."""

    source: str
    dedupe_key: str
    body: bytes
    subject_id: str | None
    event_type: str | None = None
    auth_context: str | None = None
    # pending (the applier takes it) or rejected (unusable as sent; kept for forensics)
    state: str = PENDING
    error: str | None = None


@dataclass(frozen=True)
class Stored:
    event_id: int
    is_duplicate: bool
    state: str


class StoreUnavailable(Exception):
    """The database could not be reached: the vendor must retry (503)."""


_INSERT = (
    "INSERT INTO inbound_events (source, dedupe_key, received_at, subject_id, event_type,"
    " auth_context, state, error, attempts, body_size, body, processed_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)"
    " ON CONFLICT (source, dedupe_key) DO NOTHING RETURNING id"
)
_EXISTING = "SELECT id, state FROM inbound_events WHERE source = $1 AND dedupe_key = $2"
# Connection-level failures: the server is down, restarting, or refuses connections.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # An idle connection the server cut (`pg_ctl stop -m fast`) can fail its next use with
    # "cannot switch to state ...; another operation is in progress".
    asyncpg.InternalClientError,
)


class _AckPool:
    """At most `size` plain asyncpg connections, opened on demand, closed with the app.

    Deliberately minimal (a stack of idle connections under a semaphore): the ack path changes
    no session state and never leaves a transaction open, so a connection needs no reset
    between uses, and one that saw any error is dropped.
    """

    def __init__(self, settings: Settings) -> None:
        self._dsn = (
            make_url(settings.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._slots = asyncio.Semaphore(settings.database_pool_size)
        self._idle: list[Any] = []
        self._closed = False

    async def store(self, arrival: Arrival, now: datetime) -> Stored:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None:
                    conn = await asyncpg.connect(self._dsn, timeout=5, command_timeout=30)
                stored = await _store_pg(conn, arrival, now)
            except BaseException:
                if conn is not None:
                    conn.terminate()
                raise
            if self._closed or conn.is_closed():
                conn.terminate()
            else:
                self._idle.append(conn)
            return stored

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close(timeout=5)


async def _store_pg(conn: Any, a: Arrival, now: datetime) -> Stored:
    new_id = await conn.fetchval(
        _INSERT,
        a.source,
        a.dedupe_key,
        now,
        a.subject_id,
        a.event_type,
        a.auth_context,
        a.state,
        a.error,
        len(a.body),
        a.body,
        None if a.state == PENDING else now,
    )
    if new_id is not None:
        return Stored(int(new_id), False, a.state)
    # A duplicate. The INSERT waited for a concurrent first copy to commit; this separate
    # statement (a new snapshot under READ COMMITTED) sees it.
    row = await conn.fetchrow(_EXISTING, a.source, a.dedupe_key)
    return Stored(int(row["id"]), True, str(row["state"]))


class InboundStore:
    """Stores arrivals durably; `store` returns only once the row is committed."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pool = None if settings.is_sqlite else _AckPool(settings)

    async def store(self, arrival: Arrival) -> Stored:
        now = utcnow()
        if self._pool is not None:
            try:
                return await self._pool.store(arrival, now)
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(type(exc).__name__) from exc
        return await self._store_sqlalchemy(arrival, now)

    async def _store_sqlalchemy(self, a: Arrival, now: datetime) -> Stored:
        values = {
            "source": a.source,
            "dedupe_key": a.dedupe_key,
            "received_at": now,
            "subject_id": a.subject_id,
            "event_type": a.event_type,
            "auth_context": a.auth_context,
            "state": a.state,
            "error": a.error,
            "attempts": 0,
            "body_size": len(a.body),
            "body": a.body,
            "processed_at": None if a.state == PENDING else now,
        }
        stmt = (
            sqlite_insert(InboundEvent)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
            .returning(InboundEvent.id)
        )
        async with self._engine.begin() as conn:
            new_id = (await conn.execute(stmt)).scalar_one_or_none()
            if new_id is not None:
                return Stored(int(new_id), False, a.state)
            row = (
                await conn.execute(
                    select(InboundEvent.id, InboundEvent.state).where(
                        InboundEvent.source == a.source, InboundEvent.dedupe_key == a.dedupe_key
                    )
                )
            ).one()
            return Stored(int(row.id), True, str(row.state))

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
