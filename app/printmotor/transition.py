"""The one Printmotor order state transition, as a pure function.

Webhooks, read-backs, placement answers and replays all become an `Observation` and go
through `decide`. The rules make the outcome independent of arrival order and duplication:

- status: received(10) < in_production(20) < delivered(30) < cancelled(40, absorbing). An
  observation only ever raises the rank, so the final status is the highest one observed.
- tracking (code, links, deliveryTime): taken from the DELIVERED observation with the greatest
  `tracking_key`: one that carries tracking (a code or a link) beats one that does not; then
  the latest `deliveryTime` (absent counts as earliest); then, for equal times, the one
  received later (Printmotor repeats DELIVERED to update tracking). `tracking_received_at`
  remembers when the kept tracking was received, so a replay of an older stored event never
  overwrites newer tracking, and the same event applied again changes nothing.
- done: a read-back whose `processingStatus` is anything but RECEIVED / IN_PRODUCTION means
  Printmotor has finished with the order: it is flagged (`done_at`, the raw value in
  `done_processing_status`), never read back again, and keeps its tracking (the read-back's
  tracking competes like a DELIVERED event's). Known names also move the status (DELIVERED,
  CANCELLED); unknown ones leave the rank alone and emit `printmotor.order.done`.
- descriptive fields (processingStatus verbatim, description, postal class, estimated delivery
  time) come from observations that are not stale (rank >= current rank, or a status printhook
  does not know, which leaves the rank alone). `reference` is set once. `last_event_type` is
  simply the type of the last event received (bookkeeping, not a change).
- a change-feed row is due when status, tracking or a descriptive field changed; nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
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

# The only processingStatus values a read-back shows while Printmotor still works on an order.
IN_PRODUCTION = frozenset({"RECEIVED", "IN_PRODUCTION"})

_EARLIEST = datetime.min.replace(tzinfo=UTC)
# Columns whose change is a real change of the order (one change-feed row each time).
DESCRIPTIVE = (
    "processing_status",
    "processing_status_description",
    "postal_class",
    "estimated_delivery_time",
    "delivery_time_raw",
    "estimated_delivery_time_raw",
    "done_processing_status",
)
TRACKING = ("tracking_code", "tracking_links", "delivery_time")
# Columns a row may lack when it was read by code that predates them: read with .get().
LATER_COLUMNS = (
    "tracking_received_at",
    "done_at",
    "done_processing_status",
    "delivery_time_raw",
    "estimated_delivery_time_raw",
)


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
    # The timestamps exactly as Printmotor wrote them (they carry no zone).
    delivery_time_raw: str | None = None
    estimated_delivery_time_raw: str | None = None
    # True for a GET /order/{orderNumber} answer: its processingStatus says whether Printmotor
    # still works on the order.
    is_read_back: bool = False

    @property
    def rank(self) -> int | None:
        return RANKS[self.status] if self.status else None

    @property
    def says_done(self) -> bool:
        """A read-back showing a processingStatus other than RECEIVED / IN_PRODUCTION."""
        return (
            self.is_read_back
            and self.processing_status is not None
            and self.processing_status.upper() not in IN_PRODUCTION
        )


def tracking_key(
    delivery_time: datetime | None,
    tracking_code: str | None,
    links: list[str] | tuple[str, ...],
    received_at: datetime | None,
) -> tuple[bool, bool, datetime, datetime]:
    """Order on DELIVERED tracking: the greatest key is the tracking kept (see module doc)."""
    return (
        bool(tracking_code or links),
        delivery_time is not None,
        delivery_time or _EARLIEST,
        received_at or _EARLIEST,
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
    # This observation is the one that told printhook Printmotor is done with the order.
    became_done: bool = False

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
        "delivery_time_raw": None,
        "estimated_delivery_time_raw": None,
        "tracking_received_at": None,
        "done_at": None,
        "done_processing_status": None,
        "version": 0,
    }


def decide(
    current: dict[str, Any] | None,
    obs: Observation,
    *,
    now: datetime,
    stale_after: timedelta,
    received_at: datetime | None = None,
) -> Decision:
    """Apply `obs` to the order row `current` (None: unknown order). Pure; see module doc.

    `received_at`: when the event was received (None: `now`, e.g. a read-back).
    """
    is_new = current is None
    before = _baseline(obs.order_number) if current is None else current
    before = {**{column: None for column in LATER_COLUMNS}, **before}
    after = dict(before)
    received = now if received_at is None else received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
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
            ("estimated_delivery_time_raw", obs.estimated_delivery_time_raw),
        ):
            if value is not None:
                after[column] = value
    if after["reference"] is None and obs.reference:
        after["reference"] = obs.reference

    # DELIVERED events carry tracking; so may a read-back of an order Printmotor is done with.
    if obs.status == "delivered" or obs.says_done:
        incoming = tracking_key(obs.delivery_time, obs.tracking_code, obs.tracking_links, received)
        kept = tracking_key(
            before["delivery_time"],
            before["tracking_code"],
            before["tracking_links"] or [],
            before["tracking_received_at"],
        )
        if incoming > kept:
            after["delivery_time"] = obs.delivery_time
            after["delivery_time_raw"] = obs.delivery_time_raw
            after["tracking_code"] = obs.tracking_code
            after["tracking_links"] = list(obs.tracking_links)
            after["tracking_received_at"] = received

    became_done = obs.says_done and before["done_at"] is None
    if became_done:
        after["done_at"] = now
        after["done_processing_status"] = obs.processing_status

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
    elif became_done:
        change = "printmotor.order.done"
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
    after["next_poll_at"] = None if is_done(after) else now + stale_after
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
        became_done=became_done,
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


def is_done(row: Mapping[str, Any]) -> bool:
    """Printmotor has finished with the order: a final status, or a read-back said so."""
    return row["status"] in DONE_STATUSES or row.get("done_at") is not None
