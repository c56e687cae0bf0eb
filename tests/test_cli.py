"""The `printhook` command as an operator meets it: help and defaults, `--version`, one-line
errors with documented exit codes, results on stdout and logs on stderr (real subprocesses)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import build_parser
from app.exits import ExitCode
from app.main import create_app
from app.simulator.printmotor import webhook_body
from tests.printmotor.conftest import SECRET, order_row, pm_settings, post_webhook
from tests.support.helpers import db_session, running_app, serve_in_thread, wait_for

ROOT = Path(__file__).resolve().parent.parent
PRINTHOOK = Path(sys.executable).parent / "printhook"


def command_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTHOOK_")}
    env.update({f"PRINTHOOK_{name.upper()}": value for name, value in settings.items()})
    return env


def run(
    *args: str, cwd: Path, timeout: float = 60, **settings: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env=command_env(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines()]


def walk(parser: argparse.ArgumentParser, path: str = "printhook") -> Iterator[tuple[str, Any]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")


def test_every_command_and_option_has_help_and_shows_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside a default
    commands = dict(walk(build_parser()))
    assert {"printhook serve", "printhook reconcile", "printhook simulate printmotor-webhook"} <= (
        set(commands)
    )
    for path, parser in commands.items():
        assert parser.description, f"{path} has no description"
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest} has no help in the list"
                continue
            assert action.help, f"{path}: {action.option_strings or action.dest} has no help"
            default = action.default
            if action.option_strings and default is not None and not isinstance(default, bool):
                assert f"default: {default}" in text, f"{path} {action.option_strings}"


def test_serve_help_shows_the_address_it_will_listen_on(tmp_path: Path) -> None:
    done = run("serve", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--host HOST address to listen on (default: 127.0.0.1)" in text
    assert "--port PORT port to listen on (default: 8000)" in text


def test_version_is_printed_by_the_installed_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(PRINTHOOK), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert re.fullmatch(r"printhook \d+\.\d+\.\d+\n", done.stdout)


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, line: str) -> None:
    assert done.returncode == code, done.stderr
    assert done.stderr == line + "\n"
    assert "Traceback" not in done.stdout


def test_sqlite_folder_missing_is_one_line_and_exit_3(tmp_path: Path) -> None:
    database = tmp_path / "missing" / "printhook.db"
    done = run(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        database_url=f"sqlite+aiosqlite:///{database}",
    )
    # serve logs its configuration summary first; the failure is the last line, alone.
    *logs, last = done.stderr.splitlines()
    assert done.returncode == ExitCode.DATABASE == 3
    assert last == (
        f"printhook: the folder {database.parent}/ of the SQLite database {database} does not "
        "exist (PRINTHOOK_DATABASE_URL); create it or point the URL elsewhere"
    )
    assert next(json.loads(line)["event"] for line in logs) == "config.summary"
    assert "Traceback" not in done.stderr
    for command in (("migrate",), ("reconcile", "--once"), ("replay", "1")):
        again = run(*command, cwd=tmp_path, database_url=f"sqlite+aiosqlite:///{database}")
        assert_one_line(again, 3, last)
    assert not database.parent.exists()


def test_unreachable_postgres_for_migrate_is_one_line_and_exit_3(tmp_path: Path) -> None:
    port = free_port()  # nobody listens on it
    url = f"postgresql+asyncpg://printhook:pg-password-0001@127.0.0.1:{port}/printhook"
    done = run("migrate", cwd=tmp_path, database_url=url)
    assert_one_line(
        done,
        3,
        f"printhook: cannot use the PostgreSQL database "
        f"postgresql+asyncpg://printhook:***@127.0.0.1:{port}/printhook "
        "(PRINTHOOK_DATABASE_URL): connection refused",
    )


def test_a_port_in_use_stops_serve_before_migrations_and_background_work(
    tmp_path: Path,
) -> None:
    database = tmp_path / "printhook.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = run(
            "serve",
            "--port",
            str(port),
            cwd=tmp_path,
            database_url=f"sqlite+aiosqlite:///{database}",
        )
    assert_one_line(
        done,
        4,
        f"printhook: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another printhook?); choose another --port",
    )
    assert time.monotonic() - started < 20
    # Nothing ran: no migrated database file, no log line.
    assert not database.exists()


def test_a_webhook_sent_to_nobody_is_one_line_and_exit_5(tmp_path: Path) -> None:
    port = free_port()
    done = run(
        "simulate",
        "printmotor-webhook",
        "--port",
        str(port),
        "--secret",
        SECRET,
        "--order",
        "5",
        cwd=tmp_path,
    )
    assert_one_line(
        done,
        5,
        f"printhook: cannot reach http://127.0.0.1:{port}/webhooks/printmotor: connection refused",
    )
    assert done.stdout == ""


def test_an_invalid_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run("migrate", cwd=tmp_path, reconcile_interval="1week")
    assert_one_line(
        done,
        2,
        "printhook: PRINTHOOK_RECONCILE_INTERVAL: '1week' is not a duration: use seconds (300) "
        "or a number with s, m, h or d (300s, 5m, 24h, 7d)",
    )


async def test_simulated_webhook_goes_to_the_configured_printhook(
    database_url: str, tmp_path: Path
) -> None:
    # Served with its background applier, which applies what the simulator sends.
    settings = pm_settings(
        database_url,
        run_workers=True,
        reconcile_interval=3600,
        printmotor_api_url="http://127.0.0.1:9",
    )
    with serve_in_thread(create_app(settings)) as url:
        by_base_url = run(
            "simulate",
            "printmotor-webhook",
            "--order",
            "31",
            "--tracking",
            "T31",
            cwd=tmp_path,
            public_base_url=url,
            printmotor_webhook_secrets=SECRET,
        )
        port = url.rsplit(":", 1)[1]
        by_port = run(
            "simulate",
            "printmotor-webhook",
            "--order",
            "32",
            "--port",
            port,
            cwd=tmp_path,
            printmotor_webhook_secrets=SECRET,
        )
        for done in (by_base_url, by_port):
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith('200 {"ok":true,"eventId":')
        first = await wait_for(lambda: order_row(database_url, 31))
        second = await wait_for(lambda: order_row(database_url, 32))
    assert first is not None
    assert first.tracking_code == "T31"
    assert second is not None
    assert second.status == "delivered"


async def test_reconcile_once_prints_json_on_stdout_and_logs_on_stderr(
    database_url: str, tmp_path: Path
) -> None:
    done = run("reconcile", "--once", cwd=tmp_path, database_url=database_url, log_level="INFO")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary) == {"printess", "printmotor"}
    assert summary["printess"]["skipped"] == "no Printess service token"
    # Every stderr line is a JSON log record; nothing else is mixed into stdout.
    assert all(isinstance(line["event"], str) for line in log_lines(done.stderr))


async def test_replay_json_is_parseable_and_logs_stay_on_stderr(
    database_url: str, tmp_path: Path
) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        answer = await post_webhook(client, webhook_body(41, "USER_ORDER_DELIVERED"))
    assert answer.status_code == 200
    async with db_session(database_url) as session:
        from sqlalchemy import select

        from app.inbound.models import InboundEvent

        event_id = (await session.scalars(select(InboundEvent.id))).one()
    done = run("replay", str(event_id), "--json", cwd=tmp_path, database_url=database_url)
    assert done.returncode == 0, done.stderr
    replayed = json.loads(done.stdout)
    assert {key: replayed[key] for key in ("id", "source", "subject", "state")} == {
        "id": event_id,
        "source": "printmotor",
        "subject": "41",
        "state": "applied",  # what it did the first time stays on record
    }
    assert any(line["event"] == "inbound.replayed" for line in log_lines(done.stderr))
    missing = run("replay", "424242", "--json", cwd=tmp_path, database_url=database_url)
    assert_one_line(missing, 1, "printhook: no inbound event with id 424242")
    assert missing.stdout == ""


async def test_reconcile_without_once_runs_a_pass_per_interval_until_stopped(
    database_url: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "reconcile"],
        cwd=tmp_path,
        env=command_env(database_url=database_url, reconcile_interval="0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        passes = [json.loads(proc.stdout.readline()) for _ in range(2)]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert all(set(one) == {"printess", "printmotor"} for one in passes)


def test_serve_logs_its_configuration_summary_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=command_env(api_keys="serve-test-key-0001"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None, "serve exited"
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
    assert out == ""
    lines = log_lines(err)
    (summary,) = [line for line in lines if line["event"] == "config.summary"]
    assert (summary["command"], summary["database"], summary["api_keys"]) == ("serve", "sqlite", 1)
    warned = {line["variable"] for line in lines if line["event"] == "config.warning"}
    assert "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS" in warned
    assert "PRINTHOOK_API_KEYS" not in warned
    assert (tmp_path / "printhook.db").exists()


def test_make_run_passes_host_and_port(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", "HOST=0.0.0.0", "PORT=8123"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "printhook serve --host 0.0.0.0 --port 8123" in done.stdout
    default = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run"], capture_output=True, text=True, timeout=30
    )
    assert "printhook serve --host 127.0.0.1 --port 8000" in default.stdout


@pytest.mark.parametrize("simulator", ["printess", "printmotor-api"])
def test_a_simulator_on_a_taken_port_is_one_line_and_exit_4(tmp_path: Path, simulator: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("simulate", simulator, "--port", str(port), cwd=tmp_path)
    assert done.returncode == ExitCode.ADDRESS
    assert done.stderr.splitlines()[-1] == (
        f"printhook: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another printhook?); choose another --port"
    )
    assert "Traceback" not in done.stderr


async def test_purge_json_is_parseable(database_url: str, tmp_path: Path) -> None:
    done = run("purge", "--dry-run", "--json", cwd=tmp_path, database_url=database_url)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert {k: answer[k] for k in ("dryRun", "events", "bytes", "retentionDays")} == {
        "dryRun": True,
        "events": 0,
        "bytes": 0,
        "retentionDays": 30,
    }


def test_worker_logs_its_configuration_summary_and_stops_on_sigterm(tmp_path: Path) -> None:
    assert run("migrate", cwd=tmp_path).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        cwd=tmp_path,
        env=command_env(printmotor_webhook_secrets="worker-test-webhook-key-01"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        events = []
        deadline = time.monotonic() + 30
        while "worker.started" not in events:
            assert time.monotonic() < deadline, events
            line = proc.stderr.readline()
            assert line, "worker exited"
            events.append(json.loads(line)["event"])
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""
    assert events.index("config.summary") < events.index("worker.started")
    assert "config.warning" in events  # no API keys
