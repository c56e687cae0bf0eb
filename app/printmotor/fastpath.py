"""The webhook hot path on PostgreSQL: `service.handle_webhook` in one or two statements.

Same rules and same rows as `service.handle_webhook` (which serves SQLite, and which replays
and read-backs use everywhere): the decision comes from the one `transition.decide`. Only the
way to the database differs. On this machine's loopback every round trip costs the process
more CPU than the SQL itself, so the path makes as few as it can: its own small asyncpg pool
(SQLAlchemy's pre-ping alone is BEGIN, `;`, ROLLBACK on every checkout; asyncpg's pool
adds a reset query on every release), in autocommit (no BEGIN/COMMIT), and two statements:

1. read the order row;
   (skipped for the first event of an order, usually one printhook has never seen: the
   create then fails harmlessly if the order does exist, and the row is read after all);
2. one statement (data-modifying CTEs, each gated on the one before) that checks the row is
   still at the version read (locking it), records the raw event (`ON CONFLICT DO NOTHING`:
   a duplicate stops everything after it), writes the order, appends the change-feed row and
   links a placement waiting for this reference. It commits as a whole or not at all. Every
   transition write (here and through SQLAlchemy) bumps `version`, so a row read here can
   only be written back if nothing changed it in between.

If the order changed in between (or a concurrent webhook created it), nothing was written:
then it is done again inside a transaction with the row locked, so contended orders make
progress one event at a time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import utcnow
from app.inbound.service import body_digest
from app.printmotor.service import SOURCE, InvalidPayload, parse_webhook
from app.printmotor.transition import Decision, Observation, decide, feed_data

ATTEMPTS = 5
T = TypeVar("T")
_COLUMNS = (
    "order_number",
    "reference",
    "status",
    "status_rank",
    "processing_status",
    "processing_status_description",
    "last_event_type",
    "tracking_code",
    "tracking_links",
    "postal_class",
    "delivery_time",
    "estimated_delivery_time",
    "created_at",
    "updated_at",
    "version",
    "next_poll_at",
    "poll_attempts",
)
_TYPES = {
    "status_rank": "integer",
    "version": "integer",
    "poll_attempts": "integer",
    "tracking_links": "jsonb",
    "processing_status_description": "text",
    "delivery_time": "timestamptz",
    "estimated_delivery_time": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "next_poll_at": "timestamptz",
}
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM printmotor_orders WHERE order_number = $1"

# Parameters: $1 dedupe key, $2 now, $3 event type, $4 outcome, $5 body size, $6 body,
# $7 change-feed type (NULL: no change), $8 order number, then the order's columns, then:
_FIRST = 9
_DATA, _LINK, _VERSION = (_FIRST + len(_COLUMNS) - 1 + n for n in range(3))
_VALUES = ", ".join(
    f"${n}::{_TYPES.get(c, 'varchar')}" for n, c in enumerate(_COLUMNS[1:], start=_FIRST)
)
_SETS = ", ".join(
    f"{c} = ${n}::{_TYPES.get(c, 'varchar')}" for n, c in enumerate(_COLUMNS[1:], start=_FIRST)
)
_INBOUND = """
    INSERT INTO inbound_events
        (source, dedupe_key, received_at, subject_id, event_type, outcome, body_size, body)
    SELECT 'printmotor', $1::varchar, $2::timestamptz, $8::varchar, $3::varchar, $4::varchar,
           $5::integer, $6::bytea
    {gate}
    ON CONFLICT (source, dedupe_key) DO NOTHING
    RETURNING id"""
_FEED = f"""
e AS (
    INSERT INTO events (created_at, subject_type, subject_id, type, data, inbound_event_id)
    SELECT $2::timestamptz, 'printmotor_order', $8::varchar, $7::varchar, ${_DATA}::jsonb, i.id
    FROM i WHERE $7::varchar IS NOT NULL
),
p AS (
    UPDATE printmotor_placements
    SET state = 'placed', order_number = $8::varchar, updated_at = $2::timestamptz
    WHERE ${_LINK}::boolean AND reference = ${_FIRST}::varchar
      AND state IN ('pending', 'unknown') AND EXISTS (SELECT 1 FROM i)
)"""
# A new order. The raw event comes first (a duplicate stops everything after it), then the
# order. If the order exists after all, the statement must not keep the event without applying
# it: dividing by the zero orders created aborts the whole statement (and autocommit makes the
# statement the transaction), and the caller reads the row and goes the _UPDATE way.
# (No lookups of inbound_events by dedupe_key here: before its first ANALYZE, PostgreSQL may
# plan those on the (source, subject_id) index, scanning every Printmotor event.) Taking the
# event's key first cannot deadlock: the create waits at most for another uncommitted create
# of the same order, and that one waits for nothing (DO NOTHING never waits on row locks).
_CREATE = f"""
WITH i AS ({_INBOUND.format(gate="")}
),
o AS (
    INSERT INTO printmotor_orders ({", ".join(_COLUMNS)})
    SELECT $8::varchar, {_VALUES}
    WHERE EXISTS (SELECT 1 FROM i)
    ON CONFLICT (order_number) DO NOTHING
    RETURNING 1
),{_FEED}
SELECT (SELECT id FROM i) AS inbound_id,
       CASE WHEN EXISTS (SELECT 1 FROM i) THEN 1 / (SELECT count(*) FROM o) END AS created,
       TRUE AS duplicate"""
# A known order: locked and checked to be at the version read; then as above. The order row
# is always locked before the event's key is taken (here and in the locked retry), so two
# webhooks for one order never wait for each other in a cycle.
_UPDATE = f"""
WITH cur AS (
    SELECT 1 FROM printmotor_orders
    WHERE order_number = $8::varchar AND version = ${_VERSION}::integer
    FOR UPDATE
),
i AS ({_INBOUND.format(gate="WHERE EXISTS (SELECT 1 FROM cur)")}
),
o AS (
    UPDATE printmotor_orders SET {_SETS}
    WHERE order_number = $8::varchar AND EXISTS (SELECT 1 FROM i)
),{_FEED}
SELECT (SELECT id FROM i) AS inbound_id, EXISTS (SELECT 1 FROM cur) AS duplicate"""


def _params(
    body: bytes,
    digest: str,
    obs: Observation,
    current: dict[str, Any] | None,
    decision: Decision,
) -> list[Any]:
    row = {**(current or {}), **decision.values}
    data = feed_data(row, decision.previous_status, obs.event_type) if decision.change else None
    # SQLAlchemy's jsonb codec on these connections takes JSON text, not Python objects.
    values = [row[column] for column in _COLUMNS[1:]]
    values[_COLUMNS.index("tracking_links") - 1] = json.dumps(row["tracking_links"] or [])
    link = decision.change is not None and "reference" in decision.changed
    params = [
        digest,
        utcnow(),
        obs.event_type,
        decision.outcome,
        len(body),
        body,
        decision.change,
        obs.order_number,
        *values,
        json.dumps(data) if data is not None else None,
        link and bool(row["reference"]),
    ]
    if current is not None:
        params.append(current["version"])
    return params


async def _reject(conn: Any, digest: str, body: bytes, error: str) -> None:
    await conn.execute(
        "INSERT INTO inbound_events (source, dedupe_key, received_at, outcome, error,"
        " body_size, body) VALUES ($1, $2, $3, 'rejected', $4, $5, $6)"
        " ON CONFLICT (source, dedupe_key) DO NOTHING",
        SOURCE,
        digest,
        utcnow(),
        error,
        len(body),
        body,
    )


class _Again(Exception):
    """The order was created by someone else while we held no row to lock: try again."""


class _Unread:
    """Marker: the order row must be read from the database first."""


UNREAD = _Unread()


async def _write(
    conn: Any,
    body: bytes,
    digest: str,
    obs: Observation,
    stale: timedelta,
    current: dict[str, Any] | None,
) -> str | None:
    """Decide on `current` and write, in one statement. None when the order is not at
    `current`'s version (or exists though `current` is None): nothing was written."""
    decision = decide(current, obs, now=utcnow(), stale_after=stale)
    try:
        result = await conn.fetchrow(
            _CREATE if current is None else _UPDATE,
            *_params(body, digest, obs, current, decision),
        )
    except asyncpg.DivisionByZeroError:
        return None  # _CREATE found the order exists: nothing was written

    if result["inbound_id"] is not None:
        return decision.outcome
    return "duplicate" if result["duplicate"] else None


async def _read_and_write(
    conn: Any, body: bytes, digest: str, obs: Observation, stale: timedelta, *, lock: bool
) -> str | None:
    record = await conn.fetchrow(_SELECT + (" FOR UPDATE" if lock else ""), obs.order_number)
    return await _write(conn, body, digest, obs, stale, dict(record) if record else None)


async def _apply(
    conn: Any,
    body: bytes,
    digest: str,
    obs: Observation,
    stale: timedelta,
    known: dict[str, Any] | _Unread | None,
) -> str:
    outcome: str | None = None
    if not isinstance(known, _Unread):
        # One round trip: guessed "new order"; if it exists, nothing is written.
        outcome = await _write(conn, body, digest, obs, stale, known)
    if outcome is None:
        # Two round trips: read, then write if nobody changed it in between.
        outcome = await _read_and_write(conn, body, digest, obs, stale, lock=False)
    # Contended (several events for one order at once): lock the row so this one goes next,
    # instead of retrying optimistically and perhaps starving.
    for _ in range(ATTEMPTS):
        if outcome is not None:
            break
        try:
            async with conn.transaction():
                outcome = await _read_and_write(conn, body, digest, obs, stale, lock=True)
                if outcome is None:
                    raise _Again  # roll back (the failed statement aborted the transaction)
        except _Again:
            continue
    if outcome is None:
        raise RuntimeError("printmotor order kept changing under the webhook")
    return outcome


async def _connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=5, command_timeout=30)
    await conn.set_type_codec("jsonb", encoder=str, decoder=json.loads, schema="pg_catalog")
    return conn


class WebhookPool:
    """The hot path's connections: at most as many as SQLAlchemy's pool may open, opened on
    demand, closed with the app.

    Deliberately minimal (a stack of idle connections under a semaphore): this path changes no
    session state (no SET, LISTEN, advisory locks or cursors) and never leaves a transaction
    open, so a connection needs no reset between uses, and one that saw any error is dropped.
    """

    def __init__(self, settings: Settings) -> None:
        self._dsn = (
            make_url(settings.database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._slots = asyncio.Semaphore(settings.database_pool_size * 2)
        self._idle: list[asyncpg.Connection] = []
        self._closed = False

    @staticmethod
    def guess(obs: Observation) -> dict[str, Any] | _Unread | None:
        """None (a new order: try to create it straight away) for the first event of an
        order, which printhook usually has not seen; UNREAD (read the row first) otherwise."""
        return None if obs.status in (None, "received") else UNREAD

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run `work(connection)` on a connection of the pool."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await _connect(self._dsn)
            try:
                result = await work(conn)
            except BaseException:
                conn.terminate()
                raise
            if self._closed or conn.is_closed() or conn.is_in_transaction():
                conn.terminate()
            else:
                self._idle.append(conn)
            return result

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close(timeout=5)


async def handle_webhook_postgres(
    pool: WebhookPool, body: bytes, *, stale_after: timedelta
) -> tuple[str, str | None]:
    """`service.handle_webhook` for PostgreSQL, committed. Returns (outcome, error)."""
    digest = body_digest(body)

    async def work(conn: Any) -> tuple[str, str | None]:
        try:
            obs = parse_webhook(body)
        except InvalidPayload as exc:
            await _reject(conn, digest, body, str(exc))
            return "rejected", str(exc)
        return await _apply(conn, body, digest, obs, stale_after, pool.guess(obs)), None

    return await pool.run(work)
