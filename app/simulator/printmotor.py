"""Stand-ins for Printmotor: a fake order API and a webhook signer/sender.

`FakePrintmotor` is an ASGI app that behaves like Printmotor's order API as far as printhook
uses it (HTTP Basic + `X-Printmotor-Service`, `POST {prefix}/order`,
`GET {prefix}/order/{orderNumber}` under the production base path `/api/v1`), with knobs for
slow answers, errors, throttling, and for moving an order along so a read-back has something
to heal. As the sources show Printmotor (docs/VENDORS.md): orderNumbers are JSON integers,
timestamps carry no zone, the read-back answers the order itself with `processingStatus` at
the top level, and refusals carry `technicalDescription`. `send_webhook` signs bodies exactly
as Printmotor does: base64 of the HMAC-SHA256 of the exact bytes sent; DELIVERED may be sent
again with new tracking.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.printmotor.signature import SIGNATURE_HEADER, sign


@dataclass
class CannedAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakePrintmotor:
    """An in-memory Printmotor order API. Attributes may be changed while it serves."""

    def __init__(
        self,
        *,
        username: str = "printhook",
        password: str = "printmotor-password",
        service: str = "printhook-service",
        first_order_number: int = 7000,
        prefix: str = "/api/v1",
    ) -> None:
        self.username, self.password, self.service = username, password, service
        self._numbers = itertools.count(first_order_number)
        self._lock = threading.Lock()
        # orderNumber -> what GET /order/{orderNumber} answers (Printmotor's userOrder shape)
        self.orders: dict[str, dict[str, Any]] = {}
        # Every order body POST /order accepted, in order.
        self.placed: list[dict[str, Any]] = []
        self.create_calls = 0
        self.read_calls = 0
        # Seconds to wait AFTER accepting an order before answering (a timeout then leaves
        # the caller not knowing that the order exists).
        self.create_delay = 0.0
        self.read_delay = 0.0
        # Answers for the next POST /order calls instead of accepting them (nothing created).
        self.create_failures: list[CannedAnswer] = []
        # Accept the order, then answer with this status anyway (e.g. 502 from a proxy).
        self.fail_after_accept: int | None = None
        # Answers for the next GET calls (e.g. 429 with Retry-After, 500).
        self.read_failures: list[CannedAnswer] = []
        # Every request that reached the server, as (method, raw path), matched or not.
        self.requests: list[tuple[str, str]] = []
        # Set when the server is going away: slow answers stop waiting.
        self.closing = False
        self._routes = Starlette(
            routes=[
                Route(f"{prefix}/order", self._create, methods=["POST"]),
                Route(f"{prefix}/order/{{order_number}}", self._read, methods=["GET"]),
            ]
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            """The ASGI app: records each request, then routes it."""
            if scope["type"] == "http":
                raw = scope.get("raw_path") or scope["path"].encode()
                with self._lock:
                    self.requests.append((scope["method"], raw.decode("latin-1")))
            await self._routes(scope, receive, send)

        self.app = app

    # -- knobs ---------------------------------------------------------------------------

    def set_status(
        self,
        order_number: str | int,
        processing_status: str,
        *,
        description: str | None = None,
        tracking_code: str | None = None,
        tracking_links: list[str] | None = None,
        delivery_time: str | None = None,
    ) -> None:
        """Move an order along at Printmotor without telling printhook (a lost webhook)."""
        with self._lock:
            order = self.orders[str(order_number)]
            order["processingStatus"] = processing_status
            if description is not None:
                order["processingStatusDescription"] = description
            if delivery_time is not None:
                order["deliveryTime"] = delivery_time
            if tracking_code is not None:
                order["meta"]["trackingCode"] = tracking_code
            if tracking_links is not None:
                order["meta"]["externalTrackingLinks"] = [
                    {"absoluteUrl": url} for url in tracking_links
                ]

    async def _delay(self, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.closing and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    def orders_with_reference(self, reference: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["meta"].get("reference") == reference]

    def webhook(self, order_number: str | int, event_type: str) -> bytes:
        """The webhook Printmotor would send now about this order: its current `userOrder`
        (without `processingStatus`, which the published example lacks). Call `set_status`
        with new tracking and send `USER_ORDER_DELIVERED` again to update the tracking."""
        with self._lock:
            order = json.loads(json.dumps(self.orders[str(order_number)]))
        order.pop("processingStatus", None)
        order.pop("productionClass", None)
        return _encode(event_type, order)

    # -- HTTP ----------------------------------------------------------------------------

    def _refusal(self, request: Request) -> JSONResponse | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or (user, password) != (self.username, self.password):
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        if request.headers.get("x-printmotor-service") != self.service:
            return JSONResponse({"message": "Unknown service"}, status_code=403)
        return None

    async def _create(self, request: Request) -> JSONResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        with self._lock:
            self.create_calls += 1
            canned = self.create_failures.pop(0) if self.create_failures else None
        if canned is not None:
            return JSONResponse(canned.body, canned.status, headers=canned.headers)
        try:
            order = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"technicalDescription": "Malformed JSON"}, status_code=400)
        if not isinstance(order, dict) or not order.get("products"):
            return JSONResponse(
                {"technicalDescription": "products: must not be empty"}, status_code=400
            )
        meta: dict[str, Any] = order["meta"] if isinstance(order.get("meta"), dict) else {}
        with self._lock:
            number = next(self._numbers)
            self.placed.append(order)
            self.orders[str(number)] = {
                "orderNumber": number,
                "processingStatus": "RECEIVED",
                "processingStatusDescription": "Received, waiting for production",
                "postalClass": order.get("postalClass"),
                "productionClass": order.get("productionClass"),
                "estimatedDeliveryTime": "2026-12-01T12:00",
                "meta": {"reference": meta.get("reference")},
            }
        if self.create_delay:
            await self._delay(self.create_delay)
        if self.fail_after_accept is not None:
            return JSONResponse({"message": "Bad gateway"}, status_code=self.fail_after_accept)
        # The shape of Printmotor's answer to POST /order (order-response-example.json).
        return JSONResponse(
            {
                "estimatedDeliveryTime": "2026-12-01T12:00",
                "meta": {"reference": meta.get("reference")},
                "orderNumber": number,
                "postalClass": order.get("postalClass"),
                "processingStatusDescription": "Received, waiting for production",
                "productionClass": order.get("productionClass"),
            }
        )

    async def _read(self, request: Request) -> JSONResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        with self._lock:
            self.read_calls += 1
            canned = self.read_failures.pop(0) if self.read_failures else None
        if canned is not None:
            return JSONResponse(canned.body, canned.status, headers=canned.headers)
        if self.read_delay:
            await self._delay(self.read_delay)
        order = self.orders.get(request.path_params["order_number"])
        if order is None:
            return JSONResponse({"message": "Order not found"}, status_code=404)
        return JSONResponse(order)


# -- webhooks --------------------------------------------------------------------------------


def webhook_body(
    order_number: int | str,
    event_type: str,
    *,
    reference: str | None = None,
    processing_status: str | None = None,
    description: str | None = None,
    tracking_code: str | None = None,
    tracking_links: list[str] | None = None,
    delivery_time: str | None = None,
    estimated_delivery_time: str | None = None,
    postal_class: str | None = None,
) -> bytes:
    """A webhook body in Printmotor's shape (see webhook-example-delivered.json).

    A digit string `order_number` is sent as a JSON integer, as Printmotor does; any other
    string is sent as given (for tests of bad input).
    """
    if isinstance(order_number, str) and re.fullmatch("[0-9]+", order_number):
        order_number = int(order_number)
    meta: dict[str, Any] = {}
    if reference is not None:
        meta["reference"] = reference
    if tracking_code is not None:
        meta["trackingCode"] = tracking_code
    if tracking_links:
        meta["externalTrackingLinks"] = [{"absoluteUrl": url} for url in tracking_links]
    user_order: dict[str, Any] = {"orderNumber": order_number, "meta": meta}
    for key, value in (
        ("processingStatus", processing_status),
        ("processingStatusDescription", description),
        ("deliveryTime", delivery_time),
        ("estimatedDeliveryTime", estimated_delivery_time),
        ("postalClass", postal_class),
    ):
        if value is not None:
            user_order[key] = value
    return _encode(event_type, user_order)


def _encode(event_type: str, user_order: dict[str, Any]) -> bytes:
    # Keys in alphabetical order at every level, indented, as in the published example.
    payload = {"eventType": event_type, "userOrder": user_order}
    return json.dumps(payload, indent=2, sort_keys=True).encode()


def signed_headers(body: bytes, secret: str, encoding: str = "base64") -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret, encoding)}


def send_webhook(url: str, secret: str, body: bytes, encoding: str = "base64") -> httpx.Response:
    """POST `body` to `url` signed like Printmotor signs it."""
    return httpx.post(url, content=body, headers=signed_headers(body, secret, encoding), timeout=15)
