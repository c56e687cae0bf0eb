"""Sustained rate: 1,000 signed webhooks/s for 60 s, then the ack-to-applied lag. `make bench`.

1. Creates a fresh PostgreSQL database (bench/common.py) and migrates it.
2. Serves printhook like the load test (bench/serve.py, JSON access line at INFO) with the
   applier in the same process (PRINTHOOK_RUN_WORKERS=true, the default), or with --worker:
   PRINTHOOK_RUN_WORKERS=false and a separate `printhook worker`.
3. Sends --rate requests/s for --duration seconds on a fixed schedule (request i is due at
   start + i/rate, whatever the answers before it did; a late send is counted) over
   --connections keep-alive HTTP/1.1 connections to 127.0.0.1: a small asyncio sender,
   because wrk cannot pace and wrk2 is not packaged.
4. 5 s after the last send, counts pending events (target: none), then computes the
   ack-to-applied lag (processed_at - received_at) of every event of the run.

Targets (issue 7): lag p99 <= 1 s, no backlog 5 s after the load stops.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import asyncpg
from common import (
    Process,
    Server,
    asyncpg_dsn,
    body_for,
    create_database,
    drop_database,
    fetchval,
    machine,
    printhook_env,
    server_url,
    signature_for,
    worker,
)
from sqlalchemy.engine import make_url

TARGET_LAG_P99 = 1.0
SETTLE = 5.0
_LAG = (
    "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM"
    " processed_at - received_at)), max(extract(epoch FROM processed_at - received_at)),"
    " count(*) FROM inbound_events WHERE state <> 'pending'"
)
_PENDING = "SELECT count(*) FROM inbound_events WHERE state = 'pending'"


def request_bytes(port: int, k: int) -> bytes:
    body = body_for(k)
    head = (
        f"POST /webhooks/printmotor HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Printmotor-Hmac-SHA256: {signature_for(body).decode()}\r\n\r\n"
    )
    return head.encode() + body


class Sender:
    def __init__(self, port: int, rate: int, duration: int) -> None:
        self.port, self.rate = port, rate
        self.total = rate * duration
        self.requests = [request_bytes(port, k) for k in range(self.total)]
        self.next = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.late = 0  # sent more than 10 ms after their due time (the sender fell behind)

    async def connection(self, started: float, deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while self.next < self.total and time.monotonic() < deadline:
                k, self.next = self.next, self.next + 1
                due = started + k / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.01:
                    self.late += 1
                sent = time.monotonic()
                writer.write(self.requests[k])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for text in head.split(b"\r\n"):
                    if text.lower().startswith(b"content-length:"):
                        length = int(text.split(b":", 1)[1])
                await reader.readexactly(length)
                self.latencies.append(time.monotonic() - sent)
                self.statuses[status] = self.statuses.get(status, 0) + 1
        finally:
            writer.close()

    async def run(self, connections: int, duration: int) -> float:
        started = time.monotonic() + 0.2
        deadline = started + duration + 30
        await asyncio.gather(*(self.connection(started, deadline) for _ in range(connections)))
        return time.monotonic() - started


async def lag(url: str) -> tuple[float, float, float, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row = await conn.fetchrow(_LAG)
    finally:
        await conn.close()
    return float(row[0][0]), float(row[0][1]), float(row[1]), int(row[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="webhooks per second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help="apply in `printhook worker`")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    server = server_url()
    url = asyncio.run(create_database(server))
    print(f"database: {make_url(url).render_as_string(hide_password=True)}")
    print(machine(url))
    env = printhook_env(url, run_workers=not args.worker, pool_size=16, log_level="INFO")
    env["BENCH_GC_FREEZE"] = "1"
    app = Server("printhook", env)
    side: Process | None = worker(env) if args.worker else None
    try:
        app.wait_ready()
        sender = Sender(app.port, args.rate, args.duration)
        took = asyncio.run(sender.run(args.connections, args.duration))
        stopped = time.monotonic()
        time.sleep(max(0.0, stopped + SETTLE - time.monotonic()))
        pending = asyncio.run(fetchval(url, _PENDING))
        app.check()
        if side is not None:
            side.check()
        p50, p99, worst, applied = asyncio.run(lag(url))
    finally:
        app.stop()
        if side is not None:
            side.stop()
        if not args.keep_db:
            asyncio.run(drop_database(server, url))
    sent = len(sender.latencies)
    ack = sorted(sender.latencies)
    print(
        f"applier: {'separate printhook worker' if args.worker else 'in the web process'}; "
        f"sent {sent} of {sender.total} in {took:.1f}s ({sent / took:.0f}/s, {sender.late} late "
        f"by > 10 ms), answers {dict(sorted(sender.statuses.items()))}"
    )
    print(
        f"ack latency p50 {statistics.median(ack) * 1000:.1f} ms, "
        f"p99 {ack[int(len(ack) * 0.99) - 1] * 1000:.1f} ms"
    )
    print(
        f"ack-to-applied lag over {applied} events: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms,"
        f" max {worst * 1000:.0f} ms; pending {SETTLE:.0f}s after the load stopped: {pending}"
    )
    met = p99 <= TARGET_LAG_P99 and pending == 0 and sent == sender.total
    print(
        f"targets (lag p99 <= {TARGET_LAG_P99:.0f} s, no backlog after {SETTLE:.0f} s): "
        + ("met" if met else "NOT MET")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
