"""Per-request plumbing: request id, one access-log line, request metrics.

A pure ASGI middleware (no BaseHTTPMiddleware): the Printmotor webhook is a hot path, so the
per-request cost is a contextvar, a timer, one counter increment and one log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.logging import mask_path, request_id_var
from app.ops.metrics import HTTP_REQUESTS

log = logging.getLogger("printhook.http")

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only if it is short and plain: it ends up in every log line.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Label for requests no route matched (404s, 413s refused before routing): raw paths
# would let any scanner create unbounded metric series.
UNMATCHED = "<unmatched>"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/callbacks/printess/{token}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # FastAPI sets `route` only for its own APIRoutes. A plain Starlette Route in an included
    # router (the bare Printmotor webhook endpoint) is recorded in FastAPI's per-request state.
    state = scope.get("fastapi")
    context = state.get("effective_route_context") if isinstance(state, dict) else None
    path = getattr(context, "path", None) or getattr(
        getattr(context, "original_route", None), "path", None
    )
    return path if isinstance(path, str) and path else UNMATCHED


class RequestContextMiddleware:
    """Binds a request id, returns it as `X-Request-ID`, logs `http.request`, counts requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        header_value = request_id.encode("latin-1")
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, header_value))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, once, with the request id; the traceback is redacted by the
            # formatter. The caller gets the usual problem+json, never the exception text.
            log.exception("http.request.failed", extra={"path": mask_path(scope["path"])})
            if status:
                raise
            response = problem_response(500, "internal", "Internal error")
            await response(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, route_template(scope), str(status or 500)).inc()
            client = scope.get("client")
            log.info(
                "http.request",
                extra={
                    "method": scope["method"],
                    "path": mask_path(scope["path"]),
                    "status": status or 500,
                    "duration_ms": duration_ms,
                    "client_ip": client[0] if client else None,
                },
            )
            request_id_var.reset(token)


class RootPathMiddleware:
    """Serve under `PRINTHOOK_ROOT_PATH` (FastAPI's own `root_path` is deprecated).

    Does what `uvicorn --root-path` does, inside the app so it is testable and the same under
    any server: `root_path` is set and `path` made to include it (the ASGI rule). Requests
    from a proxy that strips the prefix and from one that passes it through both route.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path
        self.raw_root_path = root_path.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["root_path"] = self.root_path
            path: str = scope["path"]
            if path != self.root_path and not path.startswith(self.root_path + "/"):
                scope["path"] = self.root_path + path
                raw_path = scope.get("raw_path")
                if raw_path is not None:
                    scope["raw_path"] = self.raw_root_path + raw_path
        await self.app(scope, receive, send)
