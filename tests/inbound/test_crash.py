"""SIGKILL after acknowledging and before applying loses nothing: a restart applies it all."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from app.inbound.models import InboundEvent
from app.printmotor.models import PrintmotorOrder
from app.simulator.printmotor import signed_headers, webhook_body
from tests.support.helpers import SHOP_KEY, db_session, wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "crash-test-webhook-key-0123456789"
ACKED = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(database_url: str, port: int, tmp_path: Path, *, workers: bool) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTHOOK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PRINTHOOK_DATABASE_URL=database_url,
        PRINTHOOK_API_KEYS=SHOP_KEY,
        PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS=SECRET,
        PRINTHOOK_RUN_WORKERS="true" if workers else "false",
        PRINTHOOK_RECONCILE_INTERVAL="3600",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--migrate", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def wait_until_up(client: httpx.AsyncClient, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, "printhook serve exited"
        assert time.monotonic() < deadline, "printhook serve did not start"
        await asyncio.sleep(0.05)


async def test_events_acknowledged_before_a_kill_are_applied_after_the_restart(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # First life: no background work, so everything acknowledged is still pending.
    server = start(database_url, port, tmp_path, workers=False)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_up(client, server)
            for number in range(1, ACKED + 1):
                body = webhook_body(number, "USER_ORDER_DELIVERED", tracking_code=f"K{number}")
                answer = await client.post(
                    "/webhooks/printmotor", content=body, headers=signed_headers(body, SECRET)
                )
                assert answer.status_code == 200
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    async with db_session(database_url) as session:
        pending = list(await session.scalars(select(InboundEvent.state)))
    assert pending == ["pending"] * ACKED

    server = start(database_url, port, tmp_path, workers=True)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_until_up(client, server)

            async def all_applied() -> bool:
                async with db_session(database_url) as session:
                    states = list(await session.scalars(select(InboundEvent.state)))
                return states == ["applied"] * ACKED

            await wait_for(all_applied, timeout=30)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    async with db_session(database_url) as session:
        orders = {
            row.order_number: row.tracking_code
            for row in await session.scalars(select(PrintmotorOrder))
        }
    assert orders == {str(n): f"K{n}" for n in range(1, ACKED + 1)}
