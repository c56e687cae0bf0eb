"""Property: whatever the interleaving and duplication of one order's webhooks, the status is
the highest one seen, the tracking is the one the tracking rule picks (the later deliveryTime;
for equal times the DELIVERED event received later), and the change feed has exactly one row
per real change."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.simulator.printmotor import webhook_body
from tests.printmotor.conftest import feed_types, order_row, pm_settings, post_webhook
from tests.support.helpers import running_app

RANK = {"received": 10, "in_production": 20, "delivered": 30, "cancelled": 40}


@dataclass(frozen=True)
class Ev:
    """One distinct Printmotor event for the order, and what it means."""

    event_type: str
    status: str | None  # None: a status printhook does not know
    processing_status: str | None = None
    delivery_time: str | None = None
    tracking_code: str | None = None

    @property
    def description(self) -> str:
        return f"{self.event_type}/{self.processing_status}"

    def body(self, number: int) -> bytes:
        return webhook_body(
            number,
            self.event_type,
            processing_status=self.processing_status,
            description=self.description,
            delivery_time=self.delivery_time,
            tracking_code=self.tracking_code,
            tracking_links=[f"https://track.example/{self.tracking_code}"]
            if self.tracking_code
            else None,
        )


POOL = [
    Ev("USER_ORDER_CREATED", "received"),
    Ev("USER_ORDER_UPDATED", "in_production", processing_status="IN_PRODUCTION"),
    Ev("USER_ORDER_ON_HOLD", None, processing_status="ON_HOLD"),
    Ev("USER_ORDER_CANCELLED", "cancelled"),
    *(
        Ev("USER_ORDER_DELIVERED", "delivered", delivery_time=when, tracking_code=code)
        for when, code in itertools.product(
            [None, "2026-11-20T10:00", "2026-11-21T08:15:00"], [None, "AAA", "BBB"]
        )
    ),
]


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _when(ev: Ev) -> datetime | None:
    if ev.delivery_time is None:
        return None
    return datetime.fromisoformat(ev.delivery_time).replace(tzinfo=UTC)


def _tracking_key(ev: Ev, received: int) -> tuple[bool, bool, datetime, int]:
    """Tracking from a DELIVERED event: one with tracking beats one without, then the later
    deliveryTime, then (equal times) the one received later."""
    when = _when(ev)
    return (ev.tracking_code is not None, when is not None, when or _EARLIEST, received)


def _tracking_value(ev: Ev | None) -> tuple[datetime | None, str | None]:
    return (_when(ev), ev.tracking_code) if ev else (None, None)


def reference_model(arrivals: list[Ev]) -> tuple[str, Ev | None, int]:
    """(final status, DELIVERED event whose tracking is kept, number of real changes),
    applying the events one by one in arrival order, byte-identical repeats deduplicated."""
    seen: set[Ev] = set()
    status, tracking, description = "received", None, None
    kept_key: tuple[bool, bool, datetime, int] | None = None
    before: tuple[object, ...] | None = None
    changes = 0
    for received, ev in enumerate(arrivals):
        if ev in seen:  # the same bytes again: a duplicate
            continue
        seen.add(ev)
        fresh = RANK[ev.status] >= RANK[status] if ev.status else status != "cancelled"
        if fresh:
            description = ev.description
        if ev.status and RANK[ev.status] > RANK[status]:
            status = ev.status
        if ev.status == "delivered":
            key = _tracking_key(ev, received)
            if kept_key is None or key > kept_key:
                tracking, kept_key = ev, key
        state = (status, _tracking_value(tracking), description)
        if state != before:
            changes += 1
        before = state
    return status, tracking, changes


_numbers = itertools.count(1)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(arrivals=st.lists(st.sampled_from(POOL), min_size=1, max_size=8))
async def test_any_interleaving_and_duplication_converges(
    database_url: str, arrivals: list[Ev]
) -> None:
    number = next(_numbers)  # a fresh order per example: examples share the database
    async with running_app(pm_settings(database_url)) as (_, client):
        for ev in arrivals:
            response = await post_webhook(client, ev.body(number))
            assert response.status_code == 200

    distinct = set(arrivals)
    expected_status = max(
        ["received", *(e.status for e in distinct if e.status)], key=RANK.__getitem__
    )
    first_arrival = {ev: arrivals.index(ev) for ev in distinct}
    winners = [e for e in distinct if e.status == "delivered"]
    best = max(winners, key=lambda e: _tracking_key(e, first_arrival[e])) if winners else None
    model_status, model_tracking, model_changes = reference_model(arrivals)
    assert model_status == expected_status
    assert _tracking_value(model_tracking) == _tracking_value(best)

    row = await order_row(database_url, number)
    assert row is not None
    assert row.status == expected_status
    assert (row.delivery_time, row.tracking_code) == _tracking_value(best)
    assert len(await feed_types(database_url, number)) == model_changes
