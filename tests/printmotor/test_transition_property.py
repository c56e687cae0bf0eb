"""Property: whatever the interleaving and duplication of one order's webhooks, the result
is the same, and the change feed has exactly one row per real change."""

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


def _tracking_key(ev: Ev) -> tuple[bool, datetime, str]:
    when = (
        datetime.fromisoformat(ev.delivery_time).replace(tzinfo=UTC) if ev.delivery_time else None
    )
    return (when is not None, when or datetime.min.replace(tzinfo=UTC), ev.tracking_code or "")


def _kept(ev: Ev | None) -> tuple[bool, datetime, str]:
    return _tracking_key(ev) if ev else (False, datetime.min.replace(tzinfo=UTC), "")


def reference_model(arrivals: list[Ev]) -> tuple[str, Ev | None, int]:
    """(final status, DELIVERED event whose tracking is kept, number of real changes)."""
    seen: set[Ev] = set()
    state: tuple[str, Ev | None, str | None] | None = None
    changes = 0
    for ev in arrivals:
        if ev in seen:  # the same bytes again: a duplicate
            continue
        seen.add(ev)
        status, tracking, description = state or ("received", None, None)
        new_status = ev.status if ev.status and RANK[ev.status] > RANK[status] else status
        fresh = RANK[ev.status] >= RANK[status] if ev.status else status != "cancelled"
        new_description = ev.description if fresh else description
        new_tracking = tracking
        if ev.status == "delivered":
            kept = (
                _tracking_key(tracking)
                if tracking
                else (False, datetime.min.replace(tzinfo=UTC), "")
            )
            if _tracking_key(ev) > kept:
                new_tracking = ev
        new_state = (new_status, new_tracking, new_description)
        if state is None or new_state != state:
            changes += 1
        state = new_state
    assert state is not None
    return state[0], state[1], changes


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
    winners = [e for e in distinct if e.status == "delivered"]
    best = max(winners, key=_tracking_key) if winners else None
    model_status, model_tracking, model_changes = reference_model(arrivals)
    assert model_status == expected_status
    assert _kept(model_tracking) == _kept(best)

    row = await order_row(database_url, number)
    assert row is not None
    assert row.status == expected_status
    assert row.tracking_code == (best.tracking_code if best else None)
    expected_delivery = (
        datetime.fromisoformat(best.delivery_time).replace(tzinfo=UTC)
        if best and best.delivery_time
        else None
    )
    assert row.delivery_time == expected_delivery
    assert len(await feed_types(database_url, number)) == model_changes
