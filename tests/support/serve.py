"""Real `printhook serve` subprocesses on free loopback ports, for fault tests.

A `ServeProcess` can be killed with SIGKILL (no shutdown code runs) and started again on the
same port; its output goes to a log file, so a killed process never blocks on a full pipe.
"""

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

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "faults-test-webhook-key-0001"
CALLBACK_SECRET = "faults-test-callback-secret-0001"
SHOP_KEY = "faults-test-shop-key-0001"
SHOP_AUTH = {"Authorization": f"Bearer {SHOP_KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a test server: the caller's minus any PRINTHOOK_ setting, plus
    the shared test secrets; `overrides` are PRINTHOOK_ names without the prefix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTHOOK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PRINTHOOK_DATABASE_URL=database_url,
        PRINTHOOK_API_KEYS=SHOP_KEY,
        PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS=WEBHOOK_SECRET,
        PRINTHOOK_PRINTESS_CALLBACK_SECRET=CALLBACK_SECRET,
        PRINTHOOK_PRINTESS_VERIFY_CALLBACKS="false",
        PRINTHOOK_RUN_WORKERS="true",
    )
    env.update({f"PRINTHOOK_{name.upper()}": value for name, value in overrides.items()})
    return env


class ServeProcess:
    """One `python -m app.cli serve` on a fixed port; start, kill -9 and restart it."""

    def __init__(self, env: dict[str, str], workdir: Path, port: int | None = None) -> None:
        self.env = env
        self.workdir = workdir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll /healthz until it answers 200; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while True:
                assert self.process is not None
                assert self.process.poll() is None, f"serve exited early:\n{self.log_tail()}"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"serve did not start:\n{self.log_tail()}"
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, leases stay held, open requests get no answer."""
        assert self.process is not None, "never started"
        assert self.process.poll() is None, "not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.kills += 1

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 15 s); the exit code, None if never started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
