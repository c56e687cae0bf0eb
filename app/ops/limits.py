"""Refusing oversized request bodies while they stream in, before they are buffered."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.hygiene import has_nul
from app.ops.metrics import INBOUND_EVENTS


class BodyTooLarge(Exception):
    pass


def _source(path: str) -> str | None:
    if "/callbacks/printess/" in path:
        return "printess"
    if path.endswith("/webhooks/printmotor"):
        return "printmotor"
    return None


class BodyLimitMiddleware:
    """The limits every request meets before any route sees it.

    - Body size: 413 as soon as `Content-Length` or the streamed bytes pass `max_body_bytes`,
      on every route, also for a chunked body the route never reads (the rest of the body is
      counted before the answer goes out, for at most `drain_timeout` seconds; not after a
      408, which already gave up on the body).
    - No NUL in the path or the query (PostgreSQL cannot compare text holding one): 400.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, drain_timeout: float = 10.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_timeout = drain_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if has_nul(scope.get("raw_path") or scope["path"].encode()) or has_nul(
            scope.get("query_string", b"")
        ):
            response = problem_response(
                400, "bad-request", "Bad request", "the path or the query holds a NUL character"
            )
            await response(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0
        body_done = too_large = response_started = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done, too_large
            if too_large:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > limit:
                    too_large = True
                    raise BodyTooLarge
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                # Whatever the route answered (FastAPI turns a failed body read into a 400),
                # a body past the limit is answered 413, read or not.
                # A 408 says the body did not arrive in time: it is not waited for again.
                if not body_done and message["status"] != 408:
                    with anyio.move_on_after(self.drain_timeout):
                        while not body_done:
                            await limited_receive()
                if too_large:
                    raise BodyTooLarge
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = _source(scope.get("path", ""))
        if source:
            INBOUND_EVENTS.labels(source, "too_large").inc()
        response = problem_response(
            413,
            "payload-too-large",
            "Request body too large",
            f"the limit is {self.max_body_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
