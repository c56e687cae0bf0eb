"""SIGTERM under load: nothing acknowledged is lost, the process exits 0, no lease stays held.

`printhook serve` runs as a real subprocess with its reconcilers busy (slow vendor fakes,
leases held) while signed Printmotor webhooks and Printess callbacks stream in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from app.context import AppContext
from app.db import utcnow
from app.inbound.models import InboundEvent
from app.main import applier
from app.printess.models import PrintessJob
from app.printmotor.models import PrintmotorOrder
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from app.simulator.printmotor import FakePrintmotor, signed_headers, webhook_body
from tests.support.helpers import db_session, make_settings, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "shutdown-test-webhook-key-0001"
CALLBACK_SECRET = "shutdown-test-callback-secret-01"
SERVICE_TOKEN = "shutdown-test-service-token-0001"
ACKED_BEFORE_SIGTERM = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def seed_reconciler_work(database_url: str, printess: PrintessSimulator) -> None:
    """Due jobs and stale orders, so both reconcilers hold leases when SIGTERM comes."""
    past = utcnow() - timedelta(minutes=5)
    async with db_session(database_url) as session:
        for _ in range(30):
            job_id = printess.create_job(delay=3600).job_id
            session.add(
                PrintessJob(
                    job_id=job_id,
                    status="pending",
                    documents={},
                    pictures=[],
                    created_at=past,
                    updated_at=past,
                    next_poll_at=past,
                    poll_attempts=0,
                )
            )
        for number in range(100, 110):
            session.add(
                PrintmotorOrder(
                    order_number=str(number),
                    status="in_production",
                    status_rank=20,
                    tracking_links=[],
                    created_at=past,
                    updated_at=past,
                    next_poll_at=past,
                    poll_attempts=0,
                )
            )
        await session.commit()


async def leases_held(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        # A plain WAL read: it needs no lock, so a busy server cannot starve this poll.
        path = database_url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return sum(
                conn.execute(
                    f"SELECT count(*) FROM {table} WHERE lease_owner IS NOT NULL"
                ).fetchone()[0]
                for table in ("printess_jobs", "printmotor_orders")
            )
    async with db_session(database_url) as session:
        jobs = await session.scalar(
            select(func.count()).where(PrintessJob.lease_owner.is_not(None))
        )
        orders = await session.scalar(
            select(func.count()).where(PrintmotorOrder.lease_owner.is_not(None))
        )
    return int(jobs or 0) + int(orders or 0)


def callback(job_id: str) -> bytes:
    return json.dumps(
        {"jobId": job_id, "isFinalStatus": True, "isFailure": False, "result": {"r": {}}}
    ).encode()


async def test_sigterm_during_load_loses_nothing_acknowledged_and_releases_leases(
    database_url: str, tmp_path: Path
) -> None:
    printess = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=3600))
    printmotor = FakePrintmotor()
    printmotor.read_delay = 0.3
    for number in range(100, 110):
        printmotor.orders[str(number)] = {"orderNumber": number, "processingStatus": "PRINTING"}
    with (
        serve_in_thread(printess.create_app()) as printess_url,
        serve_in_thread(printmotor.app) as printmotor_url,
    ):
        await seed_reconciler_work(database_url, printess)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTHOOK_")}
        env.update(
            PYTHONPATH=str(ROOT),
            PRINTHOOK_DATABASE_URL=database_url,
            PRINTHOOK_API_KEYS="shutdown-test-shop-key-0001",
            PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            PRINTHOOK_PRINTMOTOR_API_URL=printmotor_url,
            PRINTHOOK_PRINTMOTOR_USERNAME=printmotor.username,
            PRINTHOOK_PRINTMOTOR_PASSWORD=printmotor.password,
            PRINTHOOK_PRINTMOTOR_SERVICE=printmotor.service,
            PRINTHOOK_PRINTMOTOR_STALE_AFTER="1",
            PRINTHOOK_PRINTESS_API_URL=printess_url,
            PRINTHOOK_PRINTESS_SERVICE_TOKEN=SERVICE_TOKEN,
            PRINTHOOK_PRINTESS_CALLBACK_SECRET=CALLBACK_SECRET,
            PRINTHOOK_PRINTESS_VERIFY_CALLBACKS="false",
            PRINTHOOK_PRINTESS_STATUS_RATE="3",
            PRINTHOOK_RECONCILE_INTERVAL="0.2",
            PRINTHOOK_RUN_WORKERS="true",
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            acked, sigterm_at, exited_after = await run_load(server, port, database_url)
        finally:
            if server.poll() is None:
                server.kill()
            output = server.communicate(timeout=10)[0]
    assert server.returncode == 0, output[-3000:]
    assert exited_after < 8, f"took {exited_after:.1f}s to stop"
    assert len(acked) >= ACKED_BEFORE_SIGTERM
    assert sigterm_at > 0

    orders, jobs = (
        [n for kind, n in acked if kind == "order"],
        [n for kind, n in acked if kind == "job"],
    )
    # Events acknowledged but not applied before the exit are still pending in the log:
    # the next process applies them (here, the applier of a fresh context).
    restarted = AppContext.create(
        make_settings(
            database_url,
            printess_verify_callbacks=False,
            printess_callback_secret=CALLBACK_SECRET,
        )
    )
    try:
        await applier(restarted).drain()
    finally:
        await restarted.aclose()
    async with db_session(database_url) as session:
        stored_orders = {
            row.order_number: row.status
            for row in (
                await session.scalars(
                    select(PrintmotorOrder).where(
                        PrintmotorOrder.order_number.in_([str(n) for n in orders])
                    )
                )
            ).all()
        }
        stored_jobs = {
            row.job_id: row.status
            for row in (
                await session.scalars(
                    select(PrintessJob).where(PrintessJob.job_id.in_([f"load-{n}" for n in jobs]))
                )
            ).all()
        }
        inbound = await session.scalar(select(func.count()).select_from(InboundEvent))
    assert stored_orders == {str(n): "delivered" for n in orders}
    assert stored_jobs == {f"load-{n}": "succeeded" for n in jobs}
    assert int(inbound or 0) >= len(acked)
    assert await leases_held(database_url) == 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["event"] == "server.stopped" for line in lines)


async def run_load(
    server: subprocess.Popen[str], port: int, database_url: str
) -> tuple[list[tuple[str, int]], float, float]:
    """Send webhooks and callbacks from 16 workers; SIGTERM once enough were acknowledged
    and the reconcilers hold leases; keep sending until the server stops accepting."""
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "printhook serve exited early"
            assert time.monotonic() < deadline, "printhook serve did not start"
            await asyncio.sleep(0.05)

        acked: list[tuple[str, int]] = []
        numbers = itertools.count(8000)
        stopped = asyncio.Event()

        async def worker() -> None:
            while not stopped.is_set():
                n = next(numbers)
                try:
                    if n % 2:
                        body = webhook_body(n, "USER_ORDER_DELIVERED", tracking_code=f"T{n}")
                        answer = await client.post(
                            "/webhooks/printmotor",
                            content=body,
                            headers=signed_headers(body, WEBHOOK_SECRET),
                        )
                        kind = "order"
                    else:
                        answer = await client.post(
                            f"/callbacks/printess/{CALLBACK_SECRET}", content=callback(f"load-{n}")
                        )
                        kind = "job"
                except httpx.TransportError:
                    if server.poll() is not None or sigterm_sent.is_set():
                        stopped.set()
                    continue
                if 200 <= answer.status_code < 300:
                    acked.append((kind, n))

        sigterm_sent = asyncio.Event()
        workers = [asyncio.create_task(worker()) for _ in range(16)]
        deadline = time.monotonic() + 30
        while len(acked) < ACKED_BEFORE_SIGTERM or await leases_held(database_url) == 0:
            assert time.monotonic() < deadline, f"load stalled at {len(acked)} acks"
            await asyncio.sleep(0.02)
        sigterm_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        sigterm_sent.set()
        await asyncio.to_thread(server.wait, 30)
        exited_after = time.monotonic() - sigterm_at
        stopped.set()
        await asyncio.gather(*workers)
    return acked, sigterm_at, exited_after
