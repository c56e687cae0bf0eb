"""Schemathesis against a real `printhook serve`, on SQLite and on a fresh PostgreSQL database.

Every check, every phase (examples, coverage, fuzzing, stateful), the API key configured, the
vendors as loopback simulators. The run is bounded (`FUZZ_EXAMPLES` per operation, default 25,
and a fixed `FUZZ_SEED`) so `make test` stays within minutes; raise them for a soak run:

    FUZZ_EXAMPLES=500 FUZZ_SEED=$RANDOM .venv/bin/python -m pytest -q tests/api/test_fuzz.py

The figures of each run are printed and written to `FUZZ_REPORT_DIR` (default: pytest's tmp).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from app.simulator.printess import PrintessSimulator, SimulatorConfig
from app.simulator.printmotor import FakePrintmotor
from tests.api.live import ROOT, printhook_process
from tests.support import postgres
from tests.support.helpers import SHOP_KEY, serve_in_thread

PRINTESS_TOKEN = "printess-service-token-0123456789"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that `printhook serve --migrate` brings to head itself."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'printhook.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    name = f"printhook_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = postgres.create_database(server, name)
    try:
        yield url
    finally:
        postgres.drop_database(server, name)


def _vendor_settings(stack: ExitStack) -> dict[str, str]:
    printess = PrintessSimulator(SimulatorConfig(token=PRINTESS_TOKEN, delay=0.2))
    printmotor = FakePrintmotor()
    printess_url = stack.enter_context(serve_in_thread(printess.create_app()))
    printmotor_url = stack.enter_context(serve_in_thread(printmotor.app))
    return {
        "PRINTHOOK_PRINTESS_API_URL": printess_url,
        "PRINTHOOK_PRINTESS_SERVICE_TOKEN": PRINTESS_TOKEN,
        "PRINTHOOK_PRINTMOTOR_API_URL": printmotor_url,
        "PRINTHOOK_PRINTMOTOR_USERNAME": printmotor.username,
        "PRINTHOOK_PRINTMOTOR_PASSWORD": printmotor.password,
        "PRINTHOOK_PRINTMOTOR_SERVICE": printmotor.service,
    }


def run_schemathesis(
    base_url: str, report: Path, workdir: Path
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run the CLI in `workdir`, so its example database starts empty and stays out of the tree."""
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        # Replaced by the hooks' stricter-where-it-matters variant (see schemathesis_hooks).
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {SHOP_KEY}",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    figures = json.loads(report.read_text()) if report.exists() else None
    return result, figures


def test_schemathesis_finds_no_failures_on_a_live_server(
    fresh_database_url: str, tmp_path: Path
) -> None:
    dialect = "postgres" if fresh_database_url.startswith("postgresql") else "sqlite"
    report_dir = Path(os.environ.get("FUZZ_REPORT_DIR", tmp_path))
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"schemathesis-{dialect}.json"
    with ExitStack() as stack:
        env = {
            "PRINTHOOK_DATABASE_URL": fresh_database_url,
            "PRINTHOOK_API_KEYS": SHOP_KEY,
            "PRINTHOOK_LOG_LEVEL": "WARNING",
            **_vendor_settings(stack),
        }
        log_path = tmp_path / "printhook.log"
        base_url = stack.enter_context(printhook_process(env, log_path))
        result, figures = run_schemathesis(base_url, report, tmp_path)
    output = result.stdout + result.stderr
    assert figures is not None, output[-4000:]
    cases = figures["test_cases"]
    summary = (
        f"schemathesis {figures['schemathesis_version']} on {dialect}: "
        f"{cases['generated']} cases, {cases['with_failures']} with failures, "
        f"{len(figures['errors'])} errors, seed {figures['seed']}, "
        f"{EXAMPLES} examples/operation, {figures['running_time']:.1f} s"
    )
    print(summary)
    (report_dir / f"schemathesis-{dialect}.txt").write_text(summary + "\n")
    assert result.returncode == 0, output[-6000:]
    assert cases["with_failures"] == 0, output[-6000:]
    assert not figures["failures"], output[-6000:]
    assert not figures["errors"], output[-6000:]
    assert figures["operations"]["tested"] == figures["operations"]["total"]
    assert all(phase["status"] == "success" for phase in figures["phases"].values()), figures[
        "phases"
    ]
    assert cases["generated"] >= 100
    # The server logged no internal error while it was fuzzed.
    server_log = log_path.read_text()
    assert '"level": "error"' not in server_log, server_log[-4000:]
