"""The one Printmotor order state transition, as a pure function.

Webhooks, read-backs, placement answers and replays all become an `Observation` and go
through `decide`. The rules make the outcome independent of arrival order and duplication:

- status: received(10) < in_production(20) < delivered(30) < cancelled(40, absorbing). An
  observation only ever raises the rank, so the final status is the highest one observed.
- tracking (code, links, deliveryTime): taken from the DELIVERED observation with the greatest
  `tracking_key` — latest `deliveryTime` first (absent counts as earliest), then tracking code,
  then links. A total order over the values themselves, so "latest" never depends on arrival.
- descriptive fields (processingStatus verbatim, description, postal class, estimated delivery
  time) come from observations that are not stale (rank >= current rank, or a status printhook
  does not know, which leaves the rank alone). `reference` is set once. `last_event_type` is
  simply the type of the last event received (bookkeeping, not a change).
- a change-feed row is due when status, tracking or a descriptive field changed; nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

RANKS = {"received": 10, "in_production": 20, "delivered": 30, "cancelled": 40}
STATUSES = tuple(RANKS)
# Statuses whose order Printmotor has finished with: not read back any more.
DONE_STATUSES = frozenset({"delivered", "cancelled"})
OPEN_STATUSES = tuple(status for status in STATUSES if status not in DONE_STATUSES)

EVENT_STATUS = {
    "USER_ORDER_CREATED": "received",
    "USER_ORDER_DELIVERED": "delivered",
    "USER_ORDER_CANCELLED": "cancelled",
}
# RECEIVED / IN_PRODUCTION are documented; DELIVERED / CANCELLED mirror the event names and are
# what a read-back of a shipped or cancelled order must map to for the read-back to heal it.
PROCESSING_STATUS = {
    "RECEIVED": "received",
    "IN_PRODUCTION": "in_production",
    "DELIVERED": "delivered",
    "CANCELLED": "cancelled",
    "CANCELED": "cancelled",
}

_EARLIEST = datetime.min.replace(tzinfo=UTC)
# Columns whose change is a real change of the order (one change-feed row each time).
DESCRIPTIVE = (
    "processing_status",
    "processing_status_description",
    "postal_class",
    "estimated_delivery_time",
)
TRACKING = ("tracking_code", "tracking_links", "delivery_time")


@dataclass(frozen=True)
class Observation:
    """What one event or read-back says about an order, already normalised."""

    order_number: str
    status: str | None
    event_type: str | None = None
    processing_status: str | None = None
    description: str | None = None
    reference: str | None = None
    postal_class: str | None = None
    delivery_time: datetime | None = None
    estimated_delivery_time: datetime | None = None
    tracking_code: str | None = None
    tracking_links: tuple[str, ...] = ()

    @property
    def rank(self) -> int | None:
        return RANKS[self.status] if self.status else None


def tracking_key(
    delivery_time: datetime | None, tracking_code: str | None, links: list[str] | tuple[str, ...]
) -> tuple[bool, datetime, str, tuple[str, ...]]:
    """Total order on DELIVERED tracking: the greatest key is the tracking kept."""
    return (
        delivery_time is not None,
        delivery_time or _EARLIEST,
        tracking_code or "",
        tuple(links),
    )


def status_of(event_type: str | None, processing_status: str | None) -> str | None:
    """The normalised status an event says the order reached (None: printhook can't tell)."""
    candidates = [
        status
        for status in (
            EVENT_STATUS.get(event_type or ""),
            PROCESSING_STATUS.get((processing_status or "").upper()),
        )
        if status
    ]
    return max(candidates, key=RANKS.__getitem__) if candidates else None


@dataclass
class Decision:
    """Columns to write and the change-feed event type (None: nothing really changed)."""

    values: dict[str, Any]
    change: str | None
    previous_status: str | None
    is_new: bool = False
    changed: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return "applied" if self.change else "unchanged"


def _baseline(order_number: str) -> dict[str, Any]:
    # An order printhook hears of for the first time exists at Printmotor: at least received.
    return {
        "order_number": order_number,
        "reference": None,
        "status": "received",
        "status_rank": RANKS["received"],
        "processing_status": None,
        "processing_status_description": None,
        "last_event_type": None,
        "tracking_code": None,
        "tracking_links": [],
        "postal_class": None,
        "delivery_time": None,
        "estimated_delivery_time": None,
        "version": 0,
    }


def decide(
    current: dict[str, Any] | None,
    obs: Observation,
    *,
    now: datetime,
    stale_after: timedelta,
) -> Decision:
    """Apply `obs` to the order row `current` (None: unknown order). Pure; see module doc."""
    is_new = current is None
    before = _baseline(obs.order_number) if current is None else current
    after = dict(before)
    rank = int(before["status_rank"])

    if obs.rank is not None and obs.rank > rank:
        after["status"], after["status_rank"] = obs.status, obs.rank

    not_stale = obs.rank >= rank if obs.rank is not None else before["status"] != "cancelled"
    if not_stale:
        for column, value in (
            ("processing_status", obs.processing_status),
            ("processing_status_description", obs.description),
            ("postal_class", obs.postal_class),
            ("estimated_delivery_time", obs.estimated_delivery_time),
        ):
            if value is not None:
                after[column] = value
    if after["reference"] is None and obs.reference:
        after["reference"] = obs.reference

    if obs.status == "delivered":
        incoming = tracking_key(obs.delivery_time, obs.tracking_code, obs.tracking_links)
        kept = tracking_key(
            before["delivery_time"], before["tracking_code"], before["tracking_links"] or []
        )
        if incoming > kept:
            after["delivery_time"] = obs.delivery_time
            after["tracking_code"] = obs.tracking_code
            after["tracking_links"] = list(obs.tracking_links)

    changed = [
        column
        for column in ("status", "reference", *TRACKING, *DESCRIPTIVE)
        if after[column] != before[column]
    ]
    change: str | None = None
    if is_new:
        change = "printmotor.order.received"
    elif "status" in changed and after["status"] == "cancelled":
        change = "printmotor.order.cancelled"
    elif "status" in changed:
        change = "printmotor.order.status_changed"
    elif any(column in changed for column in TRACKING):
        change = "printmotor.order.tracking_updated"
    elif changed:
        change = "printmotor.order.updated"

    if obs.event_type is not None:
        after["last_event_type"] = obs.event_type
    if change:
        after["updated_at"] = now
    if is_new:
        after["created_at"] = now
        after["poll_attempts"] = 0
    # Hearing about an order (even without news) makes it fresh: read it back only after
    # another stale period. Orders Printmotor is done with are not read back.
    after["next_poll_at"] = None if after["status"] in DONE_STATUSES else now + stale_after
    after["poll_attempts"] = 0
    after["version"] = int(before["version"]) + 1
    if is_new:
        values = after
    else:
        values = {k: v for k, v in after.items() if k not in before or before[k] != v}
    return Decision(
        values=values,
        change=change,
        previous_status=None if is_new else before["status"],
        is_new=is_new,
        changed=changed,
    )


def feed_data(
    row: dict[str, Any], previous_status: str | None, event_type: str | None
) -> dict[str, Any]:
    """The change-feed payload: the order exactly as `GET /v1/printmotor/orders/{n}` shows it
    after the change, without `history` (the feed is the history)."""
    # Imported here: the API schemas import this module's status sets.
    from app.printmotor.schemas import OrderOut

    full = {"last_polled_at": None, "poll_attempts": 0, "last_event_type": event_type, **row}
    data: dict[str, Any] = OrderOut.of(full).model_dump(
        mode="json", by_alias=True, exclude={"history"}
    )
    return data
