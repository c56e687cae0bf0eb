"""The Printess client retries 429 and 5xx within bounds, honours Retry-After, hides the token."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.printess.client import (
    PrintessClient,
    PrintessRejected,
    PrintessThrottled,
    PrintessUnavailable,
)
from tests.printess.conftest import SERVICE_TOKEN, printess_settings
from tests.support.helpers import serve_in_thread


def flaky_printess(answers: list[tuple[int, dict[str, str]]]) -> tuple[FastAPI, list[float]]:
    """Answers the given (status, headers) in turn, then 200; records call times."""
    app = FastAPI()
    seen: list[float] = []

    @app.post("/production/status/get")
    async def status_get() -> JSONResponse:
        seen.append(time.monotonic())
        if len(seen) <= len(answers):
            status, headers = answers[len(seen) - 1]
            return JSONResponse({"c": status, "m": "nope"}, status_code=status, headers=headers)
        return JSONResponse({"jobId": "j", "isFinalStatus": False})

    return app, seen


async def test_429_and_5xx_are_retried_honouring_retry_after() -> None:
    app, seen = flaky_printess([(503, {}), (429, {"Retry-After": "0.3"})])
    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient() as http:
            answer = await PrintessClient(http, settings).get_status("j", attempts=3)
    assert answer["jobId"] == "j"
    assert len(seen) == 3
    assert seen[2] - seen[1] >= 0.3


async def test_errors_surface_after_bounded_attempts_without_the_token() -> None:
    app, seen = flaky_printess([(500, {})] * 5 + [(429, {"Retry-After": "30"})] * 5)
    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient() as http:
            client = PrintessClient(http, settings)
            with pytest.raises(PrintessUnavailable) as unavailable:
                await client.get_status("j", attempts=2)
            assert len(seen) == 2
            seen.clear()
            seen.extend([0.0] * 5)
            with pytest.raises(PrintessThrottled) as throttled:
                await client.get_status("j", attempts=3)
    assert throttled.value.retry_after == 30
    assert len(seen) == 6
    for exc in (unavailable.value, throttled.value):
        assert SERVICE_TOKEN not in repr(exc)


async def test_refusals_carry_printess_code_and_message() -> None:
    app = FastAPI()

    @app.post("/production/produce")
    async def produce() -> JSONResponse:
        return JSONResponse({"c": 17, "m": "Template unknown"}, status_code=406)

    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient() as http:
            with pytest.raises(PrintessRejected) as refused:
                await PrintessClient(http, settings).produce({"templateName": "t"})
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        406,
        17,
        "Template unknown",
    )
