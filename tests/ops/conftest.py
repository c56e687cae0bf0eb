"""Capturing printhook's JSON log lines during a test."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.logging import configure_logging


@dataclass
class CapturedLogs:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["event"] == name]


@pytest.fixture
def logs() -> Iterator[CapturedLogs]:
    """printhook's real logging setup (JSON formatter, request-id filter), into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.disabled
    captured = CapturedLogs()
    configure_logging("DEBUG", stream=captured.stream)
    try:
        yield captured
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.disabled = saved_access
