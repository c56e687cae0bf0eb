"""Refusing oversized request bodies while they stream in, before they are buffered."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
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
    """Answer 413 as soon as `Content-Length` or the streamed bytes pass `max_body_bytes`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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
        response_started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
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
