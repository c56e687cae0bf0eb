"""The Printess client retries reads (429, 5xx) within bounds, honours Retry-After, hides the
token, and never resends produce once it may have reached Printess."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.printess.client import (
    PrintessClient,
    PrintessOutcomeUnknown,
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


def produce_fake(answers: list[int], stall: float = 0.0) -> tuple[FastAPI, list[float]]:
    """produce answering the given statuses in turn (429 with Retry-After 0.3), then 200."""
    app = FastAPI()
    seen: list[float] = []

    @app.post("/production/produce")
    async def produce() -> JSONResponse:
        seen.append(time.monotonic())
        if stall:
            await asyncio.sleep(stall)
        if len(seen) <= len(answers):
            status = answers[len(seen) - 1]
            headers = {"Retry-After": "0.3"} if status == 429 else {}
            return JSONResponse({"c": status, "m": "x"}, status_code=status, headers=headers)
        return JSONResponse({"jobId": "job-1", "orderId": "o-1"})

    return app, seen


async def test_produce_is_retried_only_on_429_honouring_retry_after() -> None:
    app, seen = produce_fake([429])
    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient() as http:
            result = await PrintessClient(http, settings).produce({"templateName": "t"})
    assert result.job_id == "job-1"
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_produce_5xx_is_never_resent(status: int) -> None:
    app, seen = produce_fake([status] * 3)
    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient() as http:
            with pytest.raises(PrintessOutcomeUnknown) as unknown:
                await PrintessClient(http, settings).produce({"templateName": "t"})
    assert len(seen) == 1
    assert SERVICE_TOKEN not in repr(unknown.value)


async def test_produce_read_timeout_is_never_resent() -> None:
    app, seen = produce_fake([], stall=1.0)
    with serve_in_thread(app) as url:
        settings = printess_settings("sqlite+aiosqlite:///unused.db", url)
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.3)) as http:
            with pytest.raises(PrintessOutcomeUnknown):
                await PrintessClient(http, settings).produce({"templateName": "t"})
    assert len(seen) == 1


async def test_produce_to_a_refused_port_is_unavailable_not_unknown() -> None:
    settings = printess_settings("sqlite+aiosqlite:///unused.db", "http://127.0.0.1:9")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PrintessUnavailable):
            await PrintessClient(http, settings).produce({"templateName": "t"}, attempts=2)
