"""Backlog drain: how fast `printhook worker` applies pending Printmotor webhooks. `make bench`.

1. Creates a fresh PostgreSQL database (bench/common.py) and migrates it.
2. Inserts --events pending rows directly into inbound_events, exactly as the ack path stores
   them: correctly signed-and-verified bodies (the same generator as the load test: a CREATED
   per new order, and DELIVERED with tracking for orders created SPREAD events earlier, so
   about half the orders get two events), subject = order number, in arrival order.
3. Starts --workers `printhook worker` processes (PRINTHOOK_APPLY_BATCH_SIZE from
   --batch-size, if given) and polls until no event is pending (bounded by --timeout).
4. Prints the drain rate from the first to the last processed_at, the wall-clock rate from
   the worker's start, and how the events ended (applied/unchanged/rejected/failed).

Target (issue 7): >= 2,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from datetime import UTC, datetime

import asyncpg
from common import (
    asyncpg_dsn,
    body_for,
    create_database,
    drop_database,
    fetchval,
    machine,
    printhook_env,
    server_url,
    worker,
)
from sqlalchemy.engine import make_url

TARGET_RATE = 2000.0
_ROWS = (
    "INSERT INTO inbound_events (source, dedupe_key, received_at, subject_id, event_type,"
    " state, attempts, body_size, body) VALUES ('printmotor', $1, $2, $3, $4, 'pending', 0, $5, $6)"
)
_PENDING = "SELECT count(*) FROM inbound_events WHERE state = 'pending'"
_SPAN = "SELECT min(processed_at), max(processed_at) FROM inbound_events WHERE state <> 'pending'"
_STATES = "SELECT state, count(*) FROM inbound_events GROUP BY state ORDER BY state"


async def insert_backlog(url: str, count: int) -> None:
    rows = []
    now = datetime.now(UTC)
    for k in range(count):
        body = body_for(k)
        order = body.split(b'"orderNumber": ', 1)[1].split(b",", 1)[0].decode()
        kind = "USER_ORDER_DELIVERED" if b"USER_ORDER_DELIVERED" in body else "USER_ORDER_CREATED"
        rows.append((hashlib.sha256(body).hexdigest(), now, order, kind, len(body), body))
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.executemany(_ROWS, rows)
        await conn.execute("ANALYZE inbound_events")
    finally:
        await conn.close()


async def span(url: str) -> tuple[float, dict[str, int]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        first, last = await conn.fetchrow(_SPAN)
        states = {row["state"]: row["count"] for row in await conn.fetch(_STATES)}
    finally:
        await conn.close()
    return (last - first).total_seconds(), states


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, help="PRINTHOOK_APPLY_BATCH_SIZE")
    parser.add_argument("--workers", type=int, default=1, help="`printhook worker` processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (seconds)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    server = server_url()
    url = asyncio.run(create_database(server))
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    print(machine(url))
    try:
        started = time.monotonic()
        asyncio.run(insert_backlog(url, args.events))
        print(f"inserted {args.events} pending events in {time.monotonic() - started:.1f}s")
        env = printhook_env(url, run_workers=True, pool_size=5, log_level="WARNING")
        if args.batch_size:
            env["PRINTHOOK_APPLY_BATCH_SIZE"] = str(args.batch_size)
        processes = [worker(env) for _ in range(args.workers)]
        started = time.monotonic()
        pending = args.events
        try:
            while pending and time.monotonic() - started < args.timeout:
                for process in processes:
                    process.check()
                time.sleep(0.5)
                pending = asyncio.run(fetchval(url, _PENDING))
        finally:
            wall = time.monotonic() - started
            for process in processes:
                process.stop()
        seconds, states = asyncio.run(span(url))
    finally:
        if not args.keep_db:
            asyncio.run(drop_database(server, url))
    done = args.events - pending
    rate = done / seconds if seconds > 0 else 0.0
    print(
        f"{args.workers} worker(s), batch size {env.get('PRINTHOOK_APPLY_BATCH_SIZE', 'default')}: "
        f"{done} of {args.events} "
        f"events out of pending in {seconds:.1f}s (first to last processed_at) = {rate:.0f} "
        f"events/s; {done / wall:.0f} events/s from the worker's start ({wall:.1f}s)"
    )
    print("states: " + ", ".join(f"{state} {n}" for state, n in states.items()))
    met = pending == 0 and rate >= TARGET_RATE
    print(
        f"target >= {TARGET_RATE:.0f} events/s: {'met' if met else 'NOT MET'}"
        + ("" if pending == 0 else f" ({pending} still pending after {args.timeout:.0f}s)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
