"""A real `printhook serve` process on a free loopback port, with loopback vendors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def printhook_process(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Run `printhook serve --migrate` with `env` (PRINTHOOK_* settings); yield its base URL
    once /readyz answers 200. The process is stopped (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTHOOK_")}
    # Vendor callbacks (the Printess simulator's) come back to this process, nowhere else.
    full_env["PRINTHOOK_PUBLIC_BASE_URL"] = base
    full_env.update(env)
    printhook = Path(sys.executable).with_name("printhook")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(printhook), "serve", "--migrate", "--port", str(port)],
            env=full_env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"printhook exited with {process.returncode}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("printhook did not become ready within 60 s")
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
