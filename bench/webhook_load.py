"""Ack throughput of `/webhooks/printmotor` against the floor, in paired rounds. `make bench`.

1. Creates a fresh PostgreSQL database (bench/common.py) and migrates it.
2. Pre-generates distinct, correctly signed webhook bodies (CREATED then DELIVERED with
   tracking, per order), so every request is new work, never a duplicate.
3. Each round serves, warms up, loads with wrk (--connections, --duration; bench/webhook_load.lua
   cycles through the requests) and stops, one after the other:
   - `printhook`: bench/serve.py (uvicorn, one process, uvloop, httptools, JSON access line at
     INFO) with the applier running in the same process (PRINTHOOK_RUN_WORKERS=true, the default);
   - `floor`: bench/floor_app.py (verify HMAC + one INSERT ... ON CONFLICT DO NOTHING into a
     table with only a text primary key, same database, same uvicorn settings);
   - `ph+worker`: printhook with PRINTHOOK_RUN_WORKERS=false and a separate `printhook worker`.
4. Counts rows: every 2xx must be in the database; for printhook also how many were applied.
5. Prints each run, then per variant the median and the spread (min-max) of accepted req/s
   and p99, the ratio to the floor's median and the verdict against issue 7's targets.

Needs `wrk` (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Process,
    Server,
    asyncpg_dsn,
    create_database,
    drop_database,
    fetchval,
    machine,
    printhook_env,
    server_url,
    worker,
    write_requests,
)
from sqlalchemy.engine import make_url

TARGET_P99_MS = 25.0
TARGET_RATIO = 0.5
VARIANTS = ("printhook", "floor", "ph+worker")
_COUNT = {
    "printhook": "SELECT count(*) FROM inbound_events WHERE source = 'printmotor'",
    "floor": "SELECT count(*) FROM floor_events",
}
_DONE = "SELECT count(*) FROM inbound_events WHERE source = 'printmotor' AND state <> 'pending'"


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
    variant: str, db_url: str, args: argparse.Namespace, files: tuple[Path, Path]
) -> dict[str, Any]:
    count = _COUNT["floor" if variant == "floor" else "printhook"]
    env = printhook_env(
        db_url,
        run_workers=variant == "printhook",
        pool_size=args.pool_size // 2,  # pool + as many overflow
        log_level=args.log_level,
    )
    env |= {
        "FLOOR_DATABASE_URL": asyncpg_dsn(db_url),
        "FLOOR_SECRET": env["PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS"],
        "FLOOR_POOL_SIZE": str(args.pool_size),
        "BENCH_GC_FREEZE": "1" if args.gc_freeze else "0",
    }
    server = Server("floor" if variant == "floor" else "printhook", env)
    side: Process | None = worker(env) if variant == "ph+worker" else None
    try:
        server.wait_ready()
        run_wrk(server.url, files[0], args, args.warmup)
        before = asyncio.run(fetchval(db_url, count))
        done_before = asyncio.run(fetchval(db_url, _DONE))
        result = run_wrk(server.url, files[1], args, args.duration)
        done_after = asyncio.run(fetchval(db_url, _DONE))
        if side is not None:
            side.check()
    finally:
        server.stop()
        if side is not None:
            side.stop()
    result["rows"] = asyncio.run(fetchval(db_url, count)) - before
    result["applied"] = 0 if variant == "floor" else done_after - done_before
    result["all_2xx_stored"] = result["rows"] >= result["accepted"] and result["wrapped"] == 0
    return result


def line(name: str, r: dict[str, Any]) -> str:
    socket_errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    applied = f"   applied meanwhile {r['applied']}" if name != "floor" else ""
    return (
        f"{name:<10} {r['rps']:>7.0f} req/s   p50 {r['p50_us'] / 1000:6.2f} ms   "
        f"p99 {r['p99_us'] / 1000:6.2f} ms   non-2xx {r['non2xx']}   "
        f"socket errors {socket_errors}"
        f"   2xx {r['accepted']} / rows {r['rows']} {'OK' if r['all_2xx_stored'] else 'MISSING'}"
        f"{applied}"
    )


def summary(results: dict[str, list[dict[str, Any]]]) -> bool:
    """Print medians and spreads; True if every variant of printhook meets the targets."""
    med = {v: statistics.median(r["rps"] for r in runs) for v, runs in results.items()}
    met = True
    print(f"\nmedian (min-max) of {len(results['floor'])} paired round(s):")
    for variant, runs in results.items():
        rps = [r["rps"] for r in runs]
        p99 = [r["p99_us"] / 1000 for r in runs]
        text = (
            f"  {variant:<10} {med[variant]:>7.0f} req/s ({min(rps):.0f}-{max(rps):.0f})   "
            f"p99 {statistics.median(p99):6.2f} ms ({min(p99):.2f}-{max(p99):.2f})"
        )
        if variant != "floor":
            ratio = med[variant] / med["floor"]
            ok = ratio >= TARGET_RATIO and statistics.median(p99) <= TARGET_P99_MS
            met = met and ok
            text += f"   = {ratio:.0%} of the floor   {'target met' if ok else 'TARGET NOT MET'}"
        print(text)
    print(
        f"  targets: >= {TARGET_RATIO:.0%} of the floor's req/s and p99 <= {TARGET_P99_MS:.0f} ms"
    )
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--runs", type=int, default=3, help="paired rounds")
    parser.add_argument("--pool-size", type=int, default=32, help="max DB connections per server")
    parser.add_argument("--log-level", default="INFO", help="printhook's PRINTHOOK_LOG_LEVEL")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, in round order (floor is always measured): {','.join(VARIANTS)}",
    )
    parser.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gc.freeze() the startup heap in both servers (see bench/serve.py)",
    )
    parser.add_argument("--max-rate", type=int, default=12000, help="bodies generated per second")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    variants = [v for v in VARIANTS if v in args.variants.split(",") or v == "floor"]

    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed. Debian/Ubuntu: `sudo apt-get install -y wrk`; "
            "macOS: `brew install wrk`; or build it from https://github.com/wg/wrk",
            file=sys.stderr,
        )
        return 2
    server = server_url()
    db_url = asyncio.run(create_database(server))
    print(f"database: {make_url(db_url).render_as_string(hide_password=True)}")
    workdir = Path(tempfile.mkdtemp(prefix="printhook-bench-"))
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        per_run = int(args.duration * args.max_rate)
        warm = int(args.warmup * args.max_rate)
        next_body = 0
        started = time.monotonic()
        files: dict[tuple[int, str], tuple[Path, Path]] = {}
        for run in range(args.runs):
            for variant in variants:
                if variant == "floor":
                    continue
                # The floor stores in its own table, so it reuses a printhook run's bodies.
                warm_file = workdir / f"{variant}-{run}-warm.tsv"
                main_file = workdir / f"{variant}-{run}.tsv"
                write_requests(warm_file, next_body, warm)
                write_requests(main_file, next_body + warm, per_run)
                next_body += warm + per_run
                files[(run, variant)] = (warm_file, main_file)
            files[(run, "floor")] = files[(run, variants[0])]
        print(f"generated {next_body} signed bodies in {time.monotonic() - started:.1f}s")
        print(machine(db_url))
        print(
            f"wrk: {args.connections} connections, {args.threads} thread(s), "
            f"{args.duration}s per run after {args.warmup}s warm-up; "
            f"printhook log level {args.log_level}; up to {args.pool_size} DB connections each; "
            f"gc.freeze {'on' if args.gc_freeze else 'off'}"
        )
        for run in range(args.runs):
            for variant in variants:
                result = measure(variant, db_url, args, files[(run, variant)])
                results[variant].append(result)
                print(f"run {run + 1}  " + line(variant, result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_db:
            asyncio.run(drop_database(server, db_url))
    summary(results)
    stored = all(r["all_2xx_stored"] for runs in results.values() for r in runs)
    print(f"  every 2xx stored: {'yes' if stored else 'NO'}")
    return 0 if stored else 1


if __name__ == "__main__":
    sys.exit(main())
