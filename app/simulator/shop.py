"""A stand-in for the shop's webhook receiver: verifies every delivery with `standardwebhooks`
and prints it, so the whole loop can be tried locally (`printhook simulate shop`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def verify(secrets: list[Webhook], body: bytes, headers: dict[str, str]) -> object:
    """The parsed body if any secret verifies it (a rotation may sign with several)."""
    for secret in secrets:
        try:
            return secret.verify(body, headers)
        except WebhookVerificationError:
            continue
    raise WebhookVerificationError("no secret verifies this delivery")


def shop_app(secrets: list[str], out: Callable[[str], None] = print) -> Starlette:
    """A receiver accepting POSTs on any path; 401 for anything that does not verify."""
    signers = [Webhook(secret) for secret in secrets]

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            payload = verify(signers, body, headers)
        except WebhookVerificationError:
            out(f"rejected {headers.get('webhook-id', '-')}: signature does not verify")
            return JSONResponse({"ok": False, "error": "bad signature"}, status_code=401)
        event = payload if isinstance(payload, dict) else {}
        subject = event.get("subject") or {}
        out(
            f"{headers['webhook-id']} {event.get('type')} "
            f"{subject.get('type')}:{subject.get('id')} "
            + json.dumps(event.get("data"), separators=(",", ":"))
        )
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
