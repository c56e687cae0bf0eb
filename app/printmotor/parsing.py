"""Reading Printmotor's JSON (webhooks, `GET /order/{n}` and `POST /order` answers).

Lenient about what it does not need (unknown fields and event types are fine), strict about
what it stores: whatever the bytes, the result is an `Observation` or `InvalidPayload` with a
reason a person can act on — never another exception, and never a value the database would
refuse (NUL, lone surrogates, identifiers longer than their columns, dates that overflow).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from app.printmotor.transition import Observation, status_of

# orderNumber: a positive integer (a JSON integer, or a string of digits) of sane size.
MAX_ORDER_DIGITS = 18
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_ORDER_DIGITS}}}")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Column sizes (models.PrintmotorOrder) and limits for values kept in JSON.
REFERENCE_MAX = 255
EVENT_TYPE_MAX = 64
PROCESSING_STATUS_MAX = 64
POSTAL_CLASS_MAX = 64
TRACKING_CODE_MAX = 255
TIMESTAMP_MAX = 64
LINK_MAX = 2048
LINKS_MAX = 50
DESCRIPTION_MAX = 10_000


class InvalidPayload(ValueError):
    """A signed body that is not a usable Printmotor event (kept as rejected)."""


def zone(name: str) -> tzinfo:
    """The zone Printmotor's naive timestamps are read in (PRINTHOOK_PRINTMOTOR_TIMEZONE)."""
    return UTC if name == "UTC" else ZoneInfo(name)


def _check_string(value: str, name: str) -> None:
    if "\x00" in value:
        raise InvalidPayload(f"{name} contains a NUL character")
    if _SURROGATES.search(value):
        raise InvalidPayload(f"{name} contains a lone surrogate (not valid Unicode)")


def _identifier(value: object, name: str, limit: int) -> str | None:
    """A value printhook stores and matches on: rejected rather than altered."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    _check_string(value, name)
    value = value.strip()
    if len(value) > limit:
        raise InvalidPayload(f"{name} is longer than {limit} characters")
    return value or None


def _free_text(value: object, limit: int) -> str | None:
    """Words for people (processingStatusDescription): cleaned, not rejected."""
    if not isinstance(value, str):
        return None
    value = _SURROGATES.sub("\ufffd", value.replace("\x00", "")).strip()
    return value[:limit] or None


def order_number_of(value: object) -> str:
    """The canonical order number (digits, no leading zeros); InvalidPayload otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidPayload("userOrder.orderNumber is missing or not an integer")
    text = str(value).strip(" \t\r\n") if isinstance(value, str) else None
    if isinstance(value, int):
        number = value
    elif text is not None and _DIGITS.fullmatch(text):
        number = int(text)
    else:
        raise InvalidPayload(
            f"userOrder.orderNumber is not a string of at most {MAX_ORDER_DIGITS} digits"
        )
    if number <= 0 or number >= 10**MAX_ORDER_DIGITS:
        raise InvalidPayload(
            f"userOrder.orderNumber is not a positive integer of at most {MAX_ORDER_DIGITS} digits"
        )
    return str(number)


def parse_timestamp(
    value: object, name: str = "timestamp", tz: tzinfo = UTC
) -> tuple[datetime | None, str | None]:
    """(the instant in UTC, Printmotor's own string). Printmotor's timestamps carry no zone:
    they are read in `tz`. A string that is no timestamp keeps its raw text only."""
    if not isinstance(value, str):
        return None, None
    _check_string(value, name)
    raw = value.strip()
    if len(raw) > TIMESTAMP_MAX:
        raise InvalidPayload(f"{name} is longer than {TIMESTAMP_MAX} characters")
    if not raw:
        return None, None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None, raw
    try:
        moment = (parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidPayload(f"{name} is out of range in UTC") from exc
    return moment, raw


def _links(meta: dict[str, Any]) -> tuple[str, ...]:
    given = meta.get("externalTrackingLinks")
    if not isinstance(given, list):
        return ()
    if len(given) > LINKS_MAX:
        raise InvalidPayload(f"meta.externalTrackingLinks has more than {LINKS_MAX} links")
    links = []
    for link in given:
        if isinstance(link, dict):
            url = _identifier(link.get("absoluteUrl"), "absoluteUrl", LINK_MAX)
            if url:
                links.append(url)
    return tuple(links)


def parse_user_order(
    user_order: object,
    *,
    event_type: str | None,
    implied_status: str | None = None,
    tz: tzinfo = UTC,
    read_back: bool = False,
) -> Observation:
    """An `Observation` from Printmotor's `userOrder` shape (webhooks, GET and POST /order).

    `tz`: the zone of Printmotor's naive timestamps. `read_back`: the answer of
    `GET /order/{n}`, whose processingStatus tells whether Printmotor still works on it.
    """
    if not isinstance(user_order, dict):
        raise InvalidPayload("userOrder is missing or not an object")
    order_number = order_number_of(user_order.get("orderNumber"))
    meta = user_order.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    processing_status = _identifier(
        user_order.get("processingStatus"), "userOrder.processingStatus", PROCESSING_STATUS_MAX
    )
    delivery_time, delivery_raw = parse_timestamp(
        user_order.get("deliveryTime"), "userOrder.deliveryTime", tz
    )
    estimated, estimated_raw = parse_timestamp(
        user_order.get("estimatedDeliveryTime"), "userOrder.estimatedDeliveryTime", tz
    )
    return Observation(
        order_number=order_number,
        status=status_of(event_type, processing_status) or implied_status,
        event_type=event_type,
        processing_status=processing_status,
        description=_free_text(user_order.get("processingStatusDescription"), DESCRIPTION_MAX),
        reference=_identifier(meta.get("reference"), "meta.reference", REFERENCE_MAX),
        postal_class=_identifier(
            user_order.get("postalClass"), "userOrder.postalClass", POSTAL_CLASS_MAX
        ),
        delivery_time=delivery_time,
        estimated_delivery_time=estimated,
        tracking_code=_identifier(meta.get("trackingCode"), "meta.trackingCode", TRACKING_CODE_MAX),
        tracking_links=_links(meta),
        delivery_time_raw=delivery_raw,
        estimated_delivery_time_raw=estimated_raw,
        is_read_back=read_back,
    )


def parse_webhook(body: bytes, *, tz: tzinfo | str = UTC) -> Observation:
    """Parse a verified webhook body leniently; raise `InvalidPayload` if it is unusable.

    `tz`: the zone of Printmotor's naive timestamps, e.g. `settings.printmotor_timezone`
    (a zone or its name; validated at startup).
    """
    if isinstance(tz, str):
        tz = zone(tz)
    try:
        payload = json.loads(body)
    except RecursionError as exc:
        raise InvalidPayload("body is JSON nested too deeply") from exc
    except ValueError as exc:  # also UnicodeDecodeError and integers past Python's limit
        raise InvalidPayload("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidPayload("body is not a JSON object")
    event_type = _identifier(payload.get("eventType"), "eventType", EVENT_TYPE_MAX)
    return parse_user_order(payload.get("userOrder"), event_type=event_type, tz=tz)
