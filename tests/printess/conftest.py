"""A Printess simulator on loopback, and printhook settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from app.config import Settings
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from tests.support.helpers import make_settings, serve_in_thread

SERVICE_TOKEN = "sim-service-token-0123456789"
CALLBACK_SECRET = "shared-callback-secret-0123456789"


class Printess:
    """A running simulator: its state and its base URL."""

    def __init__(self, sim: PrintessSimulator, url: str) -> None:
        self.sim = sim
        self.url = url


@pytest.fixture
def printess() -> Iterator[Printess]:
    sim = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=0.2))
    with serve_in_thread(sim.create_app()) as url:
        yield Printess(sim, url)


def printess_settings(database_url: str, printess_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "printess_api_url": printess_url,
        "printess_service_token": SERVICE_TOKEN,
        "printess_callback_secret": CALLBACK_SECRET,
        "reconcile_interval": 0.2,
        # Tests do not wait Printess's 10 minutes before the first status/get.
        "printess_first_poll_after": timedelta(seconds=0.2),
        "printess_status_rate": 50,
    }
    values.update(overrides)
    return make_settings(database_url, **values)
