"""Running the `printhook` command in-process, and stored inbound events of a given age."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from app.cli import main
from app.db import utcnow
from app.inbound.models import InboundEvent
from tests.support.helpers import SHOP_KEY

CommandRunner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def printhook(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[CommandRunner]:
    """`printhook <args>` against the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("PRINTHOOK_DATABASE_URL", database_url)
    monkeypatch.setenv("PRINTHOOK_API_KEYS", SHOP_KEY)
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        # In a thread: the command runs its own event loop, the test already has one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            code = pool.submit(main, list(args)).result()
        out, err = capsys.readouterr()
        # Keep only what the command printed, not its JSON log lines (written to stderr).
        printed = "\n".join(line for line in out.splitlines() if not _is_log_line(line))
        said = "".join(line for line in err.splitlines(True) if not _is_log_line(line))
        return code, printed, said

    try:
        yield run
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _is_log_line(line: str) -> bool:
    try:
        parsed = json.loads(line)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "level" in parsed


def inbound_event(
    source: str,
    dedupe_key: str,
    body: bytes,
    *,
    age: timedelta = timedelta(0),
    subject_id: str | None = None,
    state: str = "applied",
) -> InboundEvent:
    return InboundEvent(
        source=source,
        dedupe_key=dedupe_key,
        received_at=utcnow() - age,
        subject_id=subject_id,
        state=state,
        attempts=0,
        body_size=len(body),
        body=body,
    )
