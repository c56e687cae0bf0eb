"""What the benchmarks share: a throwaway database, signed Printmotor bodies, served processes.

Everything talks to 127.0.0.1 only. The database server is PRINTHOOK_TEST_DATABASE_URL
(default postgresql+asyncpg://postgres@127.0.0.1:5432/test); each benchmark creates its own
database there, migrates it and drops it at the end.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET = "bench-printmotor-webhook-key-0123456789"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FLOOR_TABLE = "CREATE TABLE IF NOT EXISTS floor_events (key text PRIMARY KEY, body bytea)"

# A DELIVERED follows its order's CREATED this many requests later: events of one order
# are spread out as Printmotor's are (hours apart), not fired at the same instant.
SPREAD = 1000


def server_url() -> str:
    return os.environ.get("PRINTHOOK_TEST_DATABASE_URL") or DEFAULT_SERVER


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def body_for(k: int) -> bytes:
    """Webhook k: CREATED for a new order (even k), or DELIVERED with tracking for the order
    created SPREAD requests earlier (odd k); about half the requests create, half update."""
    if k % 2 == 0 or k // 2 < SPREAD:
        order, event = 500_000 + k // 2 if k % 2 == 0 else 90_000_000 + k, "USER_ORDER_CREATED"
    else:
        order, event = 500_000 + k // 2 - SPREAD, "USER_ORDER_DELIVERED"
    user_order: dict[str, Any] = {
        "orderNumber": order,
        "postalClass": "PRIORITY",
        "estimatedDeliveryTime": "2026-11-25T12:00",
        "meta": {"reference": f"bench-{order}"},
    }
    if event == "USER_ORDER_DELIVERED":
        user_order["processingStatusDescription"] = "Delivered"
        user_order["deliveryTime"] = "2026-11-24T14:57:56"
        user_order["meta"]["trackingCode"] = f"JJFI{order:012d}"
        user_order["meta"]["externalTrackingLinks"] = [
            {"absoluteUrl": f"https://track.example/JJFI{order:012d}"}
        ]
    else:
        user_order["processingStatusDescription"] = "Received, waiting for production"
    return json.dumps({"eventType": event, "userOrder": user_order}).encode()


def signature_for(body: bytes) -> bytes:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())


def write_requests(path: Path, start: int, count: int) -> None:
    with path.open("wb") as out:
        for k in range(start, start + count):
            body = body_for(k)
            out.write(signature_for(body) + b"\t" + body + b"\n")


async def create_database(server: str) -> str:
    """A fresh, migrated database on `server` (with the floor's table); returns its URL."""
    from app.migrate import upgrade

    name = f"printhook_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(FLOOR_TABLE)
    finally:
        await conn.close()
    return url


async def drop_database(server: str, url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fetchval(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def printhook_env(url: str, *, run_workers: bool, pool_size: int, log_level: str) -> dict[str, str]:
    return {
        **os.environ,
        "PRINTHOOK_DATABASE_URL": url,
        "PRINTHOOK_DATABASE_POOL_SIZE": str(pool_size),
        "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS": SECRET,
        "PRINTHOOK_API_KEYS": "bench-shop-key-0123456789",
        "PRINTHOOK_RUN_WORKERS": "true" if run_workers else "false",
        "PRINTHOOK_LOG_LEVEL": log_level,
    }


class Process:
    """A benchmark subprocess (bench/serve.py or `printhook worker`), stopped with SIGINT."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def check(self) -> None:
        if self.process.poll() is not None:
            assert self.process.stderr is not None
            tail = self.process.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited: {tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Server(Process):
    """printhook or the floor on a free loopback port, served by bench/serve.py."""

    def __init__(self, which: str, env: dict[str, str]) -> None:
        self.port = free_port()
        serve = str(ROOT / "bench" / "serve.py")
        super().__init__(which, [sys.executable, serve, which, str(self.port)], env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.check()
            try:
                httpx.post(f"{self.url}/webhooks/printmotor", content=b"{}", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")


def worker(env: dict[str, str]) -> Process:
    """`printhook worker` (the applier and the other background loops) on the same database."""
    command = [str(Path(sys.executable).parent / "printhook"), "worker"]
    return Process("printhook worker", command, env)


def machine(db_url: str) -> str:
    cpu = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    async def _postgres() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            version = await conn.fetchval("SHOW server_version")
            sync = await conn.fetchval("SHOW synchronous_commit")
            return f"PostgreSQL {version} (synchronous_commit={sync})"
        finally:
            await conn.close()

    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, "
        f"{asyncio.run(_postgres())}, same host over loopback"
    )
