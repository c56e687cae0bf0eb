"""A stand-in for the Printess backend API, for local runs and tests.

`printhook simulate printess` serves it; the tests use the same app through `serve_in_thread`.

It behaves like the parts of Printess printhook relies on:

- `POST /production/produce` (Bearer token required) answers `{jobId, orderId}`; the job becomes
  final `delay` seconds later and `callbackUrl` is called with the callback shape
  (`isFailure`/`failureDetails`, `meta` at the top and in `result`; `callback_shape="status"`
  sends the status/get shape instead, `"alternate"` switches between the two).
  `produce_answer_status` (e.g. 502) enqueues the job and then answers that status, like a
  gateway failing after Printess took the job; `produce_delay` enqueues, then stalls.
- `result` as Printess sends it: `r` maps document names to URLs, `d` maps the same names to
  output file names (`<jobId>_1.pdf`), `p` lists pictures, `zip` is a zip URL and `ff` the URL of
  a form-fields JSON file (all served under `/files/`).
- Trigger template names: `simulate:402` → 402 `{c, m}` (insufficient funds), `simulate:406` → 406
  `{c, m}` (not accepted), `simulate:fail` → the job fails, `simulate:slow` → the job never
  finishes.
- `POST /production/status/get` answers `BackendJobStatus`; `isFinalStatus` is false until `delay`
  has passed, and `result.meta` is null (Printess returns `meta` only in the callback). A job it
  does not know (`forget()` drops one) gets 200 `isFinalStatus:false, isSuccess:false,
  enqueuedOn:null`, as Printess answers for jobs it no longer knows. With `throttle_rate` N > 0,
  more than N calls within one second get 429 with `Retry-After`.
- `fail_rate` makes jobs fail, `lose_callback_rate` drops callbacks (never sent).
- Introspection: `calls` (with monotonic timestamps), `jobs`, `callbacks`, `lose_next_callback()`,
  `callback_body()`, and over HTTP `GET /_sim/jobs` and `POST /_sim/jobs/{jobId}/callback`
  (redeliver, or deliver a forged body given as the request body).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from app.simulator.printess_payloads import SimJob, callback_body, status_body, unknown_job_body

Shape = Literal["callback", "status", "alternate"]


@dataclass
class SimulatorConfig:
    # The service token to require; None accepts any non-empty Bearer token.
    token: str | None = None
    delay: float = 2.0
    # How long produce itself takes to answer (the job is enqueued, and its timer runs, first).
    produce_delay: float = 0.0
    # Answer produce with this status AFTER enqueuing the job (a 502 from a gateway, say).
    produce_answer_status: int | None = None
    fail_rate: float = 0.0
    lose_callback_rate: float = 0.0
    # Max status/get calls per second; 0 disables throttling.
    throttle_rate: float = 0.0
    callback_shape: Shape = "callback"
    # Send callbacks here instead of to callbackUrl's host (like a proxy in front of printhook).
    callback_base_url: str | None = None
    # Waits before redelivering a callback that did not get a 2xx (Printess: 5 min, 15 min, ...).
    callback_retry_delays: tuple[float, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Call:
    path: str
    job_id: str | None
    at: float  # time.monotonic()
    status: int


@dataclass(frozen=True)
class CallbackAttempt:
    job_id: str
    at: float
    status: int | None  # None: connection failed
    error: str | None = None


class PrintessSimulator:
    """Simulator state; safe to inspect from the test thread while the app serves requests."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._lock = threading.Lock()
        self._random = random.Random(self.config.seed)
        self.calls: list[Call] = []
        self.jobs: dict[str, SimJob] = {}
        self.callbacks: list[CallbackAttempt] = []
        self._lose_next = 0
        self._alternate = 0
        self._window: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    # --- introspection ----------------------------------------------------------------------

    def calls_to(self, operation: Literal["produce", "status"]) -> list[Call]:
        path = "/production/produce" if operation == "produce" else "/production/status/get"
        with self._lock:
            return [call for call in self.calls if call.path == path]

    def lose_next_callback(self, count: int = 1) -> None:
        with self._lock:
            self._lose_next += count

    def create_job(
        self,
        template_name: str = "sim-template",
        *,
        delay: float | None = None,
        fails: bool | None = None,
        callback_url: str | None = None,
        meta: str | None = None,
        external_order_id: str | None = None,
        origin: str | None = "simulator",
        files_base: str = "http://printess.simulator",
    ) -> SimJob:
        """Enqueue a job as produce would (also usable directly by tests)."""
        with self._lock:
            wait = self.config.delay if delay is None else delay
            if template_name == "simulate:slow":
                wait = math.inf
            fail = fails
            if fail is None:
                fail = template_name == "simulate:fail" or (
                    self._random.random() < self.config.fail_rate
                )
            lose = self._random.random() < self.config.lose_callback_rate
            if self._lose_next:
                self._lose_next -= 1
                lose = True
            shape: Literal["callback", "status"] = "callback"
            if self.config.callback_shape == "status":
                shape = "status"
            elif self.config.callback_shape == "alternate":
                self._alternate += 1
                shape = "status" if self._alternate % 2 == 0 else "callback"
            job = SimJob(
                job_id=f"sim-{uuid.uuid4().hex[:16]}",
                order_id=f"ord-{uuid.uuid4().hex[:10]}",
                template_name=template_name,
                origin=origin,
                external_order_id=external_order_id,
                meta=meta,
                callback_url=callback_url,
                files_base=files_base.rstrip("/"),
                created_at=datetime.now(UTC),
                ready_at=time.monotonic() + wait,
                fails=bool(fail),
                lose_callback=lose,
                shape=shape,
            )
            self.jobs[job.job_id] = job
            return job

    def forget(self, job_id: str) -> None:
        """Printess no longer knows the job (status/get answers the unknown-job shape)."""
        with self._lock:
            self.jobs.pop(job_id, None)

    def finish(self, job_id: str) -> None:
        """Make a job final now (its callback, if scheduled, still follows its own timer)."""
        with self._lock:
            self.jobs[job_id].ready_at = time.monotonic()

    def status_body(
        self, job_id: str, *, final: bool | None = None, with_meta: bool = False
    ) -> dict[str, Any]:
        """`BackendJobStatus` as status/get answers it now (or as if final, for callbacks).
        status/get carries no meta; `with_meta` is for the status-shaped callback."""
        job = self.jobs.get(job_id)
        if job is None:
            return unknown_job_body(job_id)
        if final is None:
            final = job.is_final(time.monotonic())
        return status_body(job, final=final, with_meta=with_meta)

    def callback_body(
        self, job_id: str, shape: Literal["callback", "status"] | None = None
    ) -> dict[str, Any]:
        """The body Printess would post to callbackUrl for this job."""
        job = self.jobs[job_id]
        if (shape or job.shape) == "status":
            return status_body(job, final=True, with_meta=True)
        return callback_body(job)

    # --- behaviour --------------------------------------------------------------------------

    def _record(self, path: str, job_id: str | None, status: int) -> None:
        with self._lock:
            self.calls.append(Call(path, job_id, time.monotonic(), status))

    def _throttle(self) -> float | None:
        """Seconds to wait if this status/get call is over the limit, else None."""
        limit = self.config.throttle_rate
        if limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= limit:
                return max(0.0, self._window[0] + 1.0 - now)
            self._window.append(now)
        return None

    def _callback_target(self, url: str) -> str:
        base = self.config.callback_base_url
        if not base:
            return url
        parts = urlsplit(url)
        return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    async def deliver(self, job_id: str, body: dict[str, Any] | None = None) -> int | None:
        """POST the job's callback (or a forged `body`) to its callbackUrl once."""
        job = self.jobs[job_id]
        if job.callback_url is None or self._http is None:
            return None
        payload = body if body is not None else self.callback_body(job_id)
        try:
            response = await self._http.post(self._callback_target(job.callback_url), json=payload)
        except httpx.HTTPError as exc:
            with self._lock:
                self.callbacks.append(
                    CallbackAttempt(job_id, time.monotonic(), None, type(exc).__name__)
                )
            return None
        with self._lock:
            self.callbacks.append(CallbackAttempt(job_id, time.monotonic(), response.status_code))
            job.callback_status = response.status_code
        return response.status_code

    async def _deliver_later(self, job: SimJob) -> None:
        await asyncio.sleep(max(0.0, job.ready_at - time.monotonic()))
        if job.lose_callback:
            return
        for wait in (0.0, *self.config.callback_retry_delays):
            await asyncio.sleep(wait)
            status = await self.deliver(job.job_id)
            if status is not None and 200 <= status < 300:
                return

    def _schedule(self, job: SimJob) -> None:
        if job.callback_url is None or math.isinf(job.ready_at):
            return
        task = asyncio.create_task(self._deliver_later(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the ASGI app -----------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.config.token is None or token.strip() == self.config.token

    def create_app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            self._http = httpx.AsyncClient(timeout=5.0)
            try:
                yield
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                await self._http.aclose()
                self._http = None

        app = FastAPI(title="Printess simulator", lifespan=lifespan)
        app.state.simulator = self

        @app.post("/production/produce")
        async def produce(request: Request) -> Response:
            if not self._authorized(request):
                self._record("/production/produce", None, 401)
                return JSONResponse({"c": 401, "m": "Unauthorized"}, status_code=401)
            try:
                body = await request.json()
            except ValueError:
                body = None
            template = body.get("templateName") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not template or not body.get("origin"):
                self._record("/production/produce", None, 400)
                return JSONResponse({"c": 400, "m": "templateName and origin are required"}, 400)
            if template in ("simulate:402", "simulate:406"):
                status = int(template[-3:])
                message = (
                    "Insufficient funds: please top up your Printess account"
                    if status == 402
                    else f"Template '{template}' is not published and cannot be produced"
                )
                self._record("/production/produce", None, status)
                return JSONResponse({"c": status, "m": message}, status_code=status)
            job = self.create_job(
                template,
                callback_url=body.get("callbackUrl") or None,
                meta=body.get("meta"),
                external_order_id=body.get("externalOrderId"),
                origin=body.get("origin"),
                files_base=str(request.base_url),
            )
            self._schedule(job)
            if self.config.produce_delay:
                await asyncio.sleep(self.config.produce_delay)
            failure = self.config.produce_answer_status
            if failure is not None:
                self._record("/production/produce", job.job_id, failure)
                return Response(b"<html>Bad Gateway</html>", failure, media_type="text/html")
            self._record("/production/produce", job.job_id, 200)
            return JSONResponse({"jobId": job.job_id, "orderId": job.order_id})

        @app.post("/production/status/get")
        async def status_get(request: Request) -> Response:
            path = "/production/status/get"
            if not self._authorized(request):
                self._record(path, None, 401)
                return JSONResponse({"c": 401, "m": "Unauthorized"}, status_code=401)
            try:
                job_id = (await request.json()).get("jobId")
            except (ValueError, AttributeError):
                job_id = None
            wait = self._throttle()
            if wait is not None:
                self._record(path, job_id, 429)
                retry_after = str(max(1, math.ceil(wait)))
                return JSONResponse(
                    {"c": 429, "m": "Too many requests"},
                    status_code=429,
                    headers={"Retry-After": retry_after},
                )
            if not isinstance(job_id, str) or not job_id:
                self._record(path, None, 400)
                return JSONResponse({"c": 400, "m": "jobId is required"}, status_code=400)
            self._record(path, job_id, 200)
            return JSONResponse(self.status_body(job_id))

        @app.get("/files/{job_id}/{name}")
        async def files(job_id: str, name: str) -> Response:
            if job_id not in self.jobs:
                return Response(status_code=404)
            if name.endswith(".pdf"):
                return Response(
                    b"%PDF-1.4\n% printess simulator\n%%EOF\n", media_type="application/pdf"
                )
            if name.endswith(".json"):
                return JSONResponse({"environment": "simulator", "formFields": []})
            if name.endswith(".zip"):
                # An empty zip archive (end-of-central-directory record only).
                return Response(b"PK\x05\x06" + bytes(18), media_type="application/zip")
            return Response(b"\x89PNG\r\n\x1a\n", media_type="image/png")

        @app.get("/_sim/jobs")
        async def list_jobs() -> dict[str, Any]:
            now = time.monotonic()
            return {
                "jobs": [
                    {
                        "jobId": job.job_id,
                        "templateName": job.template_name,
                        "isFinal": job.is_final(now),
                        "fails": job.fails,
                        "loseCallback": job.lose_callback,
                        "callbackStatus": job.callback_status,
                    }
                    for job in self.jobs.values()
                ]
            }

        @app.post("/_sim/jobs/{job_id}/callback")
        async def redeliver(job_id: str, request: Request) -> Response:
            if job_id not in self.jobs:
                return JSONResponse({"error": "no such job"}, status_code=404)
            raw = await request.body()
            forged = None
            if raw.strip():
                try:
                    forged = await request.json()
                except ValueError:
                    return JSONResponse({"error": "body must be JSON"}, status_code=400)
            status = await self.deliver(job_id, forged)
            return JSONResponse({"delivered": status is not None, "status": status})

        return app


def create_printess_simulator(config: SimulatorConfig | None = None) -> FastAPI:
    """An ASGI app behaving like Printess; its state is `app.state.simulator`."""
    return PrintessSimulator(config).create_app()
