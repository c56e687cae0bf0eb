"""Load `/webhooks/printmotor` on loopback and compare it with the floor. Run: `make bench`.

1. Creates a fresh PostgreSQL database (server: PRINTHOOK_TEST_DATABASE_URL, default
   postgresql+asyncpg://postgres@127.0.0.1:5432/test) and migrates it.
2. Pre-generates distinct, correctly signed webhook bodies (CREATED then DELIVERED with
   tracking, per order), so every request is new work, never a duplicate.
3. For each run: serves printhook (bench/serve.py: uvicorn, one process, uvloop, httptools),
   warms it up, loads it with wrk for --duration seconds at --connections connections
   (bench/webhook_load.lua cycles through the requests), stops it; then the same for the floor
   (bench/floor_app.py: verify HMAC + one INSERT ... ON CONFLICT DO NOTHING, same database).
4. Counts rows: every 2xx must be in the database.
5. Prints accepted req/s, p50/p99 latency, the ratio to the floor, and the medians of all runs.

Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.migrate import upgrade  # noqa: E402

SECRET = "bench-printmotor-webhook-key-0123456789"
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_P99_MS = 25.0
TARGET_RATIO = 0.5


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# A DELIVERED follows its order's CREATED this many requests later: events of one order
# are spread out as Printmotor's are (hours apart), not fired at the same instant.
SPREAD = 1000


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


def write_requests(path: Path, start: int, count: int) -> None:
    key = SECRET.encode()
    with path.open("wb") as out:
        for k in range(start, start + count):
            body = body_for(k)
            signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
            out.write(signature + b"\t" + body + b"\n")


async def create_database(server_url: str) -> str:
    name = f"printhook_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def count_rows(url: str, source: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM inbound_events WHERE source = $1", source
        )
        return count
    finally:
        await conn.close()


class Server:
    def __init__(
        self, which: str, url: str, pool_size: int, log_level: str, gc_freeze: bool
    ) -> None:
        self.which, self.port = which, free_port()
        env = {
            **os.environ,
            "PRINTHOOK_DATABASE_URL": url,
            "PRINTHOOK_DATABASE_POOL_SIZE": str(pool_size // 2),  # pool + as many overflow
            "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS": SECRET,
            "PRINTHOOK_API_KEYS": "bench-shop-key-0123456789",
            "PRINTHOOK_RUN_WORKERS": "false",
            "PRINTHOOK_LOG_LEVEL": log_level,
            "FLOOR_DATABASE_URL": asyncpg_dsn(url),
            "FLOOR_SECRET": SECRET,
            "FLOOR_POOL_SIZE": str(pool_size),
            "BENCH_GC_FREEZE": "1" if gc_freeze else "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "serve.py"), which, str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.which} exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                httpx.post(f"{self.url}/webhooks/printmotor", content=b"{}", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.which} did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_wrk(
    url: str, requests_file: Path, args: argparse.Namespace, duration: float
) -> dict[str, Any]:
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file), "BENCH_THREADS": str(args.threads)}
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{int(duration)}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "webhook_load.lua"),
        f"{url}/webhooks/printmotor",
    ]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            result["accepted"] = result["requests"] - result["non2xx"]
            result["rps"] = result["accepted"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError("wrk printed no result:\n" + output)


def measure(
    which: str, db_url: str, args: argparse.Namespace, files: tuple[Path, Path]
) -> dict[str, Any]:
    source = "printmotor" if which == "printhook" else "floor"
    server = Server(which, db_url, args.pool_size, args.log_level, args.gc_freeze)
    try:
        server.wait_ready()
        run_wrk(server.url, files[0], args, args.warmup)
        before = asyncio.run(count_rows(db_url, source))
        result = run_wrk(server.url, files[1], args, args.duration)
    finally:
        server.stop()
    result["rows"] = asyncio.run(count_rows(db_url, source)) - before
    result["all_2xx_stored"] = result["rows"] >= result["accepted"] and result["wrapped"] == 0
    return result


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


def line(name: str, r: dict[str, Any]) -> str:
    socket_errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return (
        f"{name:<10} {r['rps']:>9.0f} req/s   p50 {r['p50_us'] / 1000:6.2f} ms   "
        f"p99 {r['p99_us'] / 1000:6.2f} ms   non-2xx {r['non2xx']}   "
        f"socket errors {socket_errors}"
        f"   2xx {r['accepted']} / rows {r['rows']} {'OK' if r['all_2xx_stored'] else 'MISSING'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3.0, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    parser.add_argument("--pool-size", type=int, default=32, help="max DB connections per server")
    parser.add_argument("--log-level", default="INFO", help="printhook's PRINTHOOK_LOG_LEVEL")
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() the startup heap in both servers (see bench/serve.py)",
    )
    parser.add_argument("--max-rate", type=int, default=15000, help="bodies generated per second")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed. Debian/Ubuntu: `sudo apt-get install -y wrk`; "
            "macOS: `brew install wrk`; or build it from https://github.com/wg/wrk",
            file=sys.stderr,
        )
        return 2
    server_url = os.environ.get("PRINTHOOK_TEST_DATABASE_URL") or DEFAULT_SERVER
    db_url = asyncio.run(create_database(server_url))
    print(f"database: {make_url(db_url).render_as_string(hide_password=True)}")
    workdir = Path(tempfile.mkdtemp(prefix="printhook-bench-"))
    results: dict[str, list[dict[str, Any]]] = {"printhook": [], "floor": []}
    try:
        upgrade(db_url)
        per_run = int(args.duration * args.max_rate)
        warm = int(args.warmup * args.max_rate)
        next_body = 0
        started = time.monotonic()
        files: dict[tuple[int, str], tuple[Path, Path]] = {}
        for run in range(args.runs):
            for which in ("printhook", "floor"):
                warm_file, main_file = (
                    workdir / f"{which}-{run}-warm.tsv",
                    workdir / f"{which}-{run}.tsv",
                )
                # The floor stores under its own source, so it may reuse printhook's bodies.
                if which == "printhook":
                    write_requests(warm_file, next_body, warm)
                    write_requests(main_file, next_body + warm, per_run)
                    next_body += warm + per_run
                    files[(run, which)] = (warm_file, main_file)
                else:
                    files[(run, which)] = files[(run, "printhook")]
        print(f"generated {next_body} signed bodies in {time.monotonic() - started:.1f}s")
        print(machine(db_url))
        print(
            f"wrk: {args.connections} connections, {args.threads} thread(s), "
            f"{args.duration}s per run after {args.warmup}s warm-up; "
            f"printhook log level {args.log_level}; up to {args.pool_size} DB connections each; "
            f"gc.freeze {'on' if args.gc_freeze else 'off'}"
        )
        for run in range(args.runs):
            for which in ("printhook", "floor"):
                result = measure(which, db_url, args, files[(run, which)])
                results[which].append(result)
                print(f"run {run + 1}  " + line(which, result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_db:
            asyncio.run(drop_database(server_url, db_url))

    median = {
        which: {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_us", "p99_us")}
        for which, runs in results.items()
    }
    ratio = median["printhook"]["rps"] / median["floor"]["rps"]
    p99 = median["printhook"]["p99_us"] / 1000
    stored = all(r["all_2xx_stored"] for runs in results.values() for r in runs)
    print(f"\nmedian of {args.runs} run(s):")
    for which in ("printhook", "floor"):
        m = median[which]
        print(
            f"  {which:<10} {m['rps']:>9.0f} req/s   p50 {m['p50_us'] / 1000:6.2f} ms   "
            f"p99 {m['p99_us'] / 1000:6.2f} ms"
        )
    print(
        f"  printhook / floor = {ratio:.0%} (target >= {TARGET_RATIO:.0%}), "
        f"p99 {p99:.2f} ms (target <= {TARGET_P99_MS:.0f} ms), "
        f"every 2xx stored: {'yes' if stored else 'NO'}"
    )
    met = ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS and stored
    print("  target met" if met else "  TARGET NOT MET")
    return 0 if stored else 1


if __name__ == "__main__":
    sys.exit(main())
