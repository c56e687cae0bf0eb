"""Outbound webhooks against a real receiver on loopback that verifies with `standardwebhooks`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.config import ConfigurationError, load_settings
from app.context import AppContext
from app.feed import notifier
from app.feed.models import Delivery, Event, NotifyState
from app.feed.notifier import Notifier
from tests.feed.conftest import Receiver, new_secret, notify_settings, observe
from tests.support.helpers import AUTH, db_session, make_settings, running_app, wait_for

pytestmark = pytest.mark.usefixtures("fast_notifier")


async def deliveries(database_url: str) -> list[Delivery]:
    async with db_session(database_url) as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())


async def event_ids(database_url: str) -> list[int]:
    async with db_session(database_url) as session:
        return list((await session.scalars(select(Event.id).order_by(Event.id))).all())


def delivered_count(receiver: Receiver, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(receiver.ids(status=200)) >= n

    return check


async def test_every_event_is_posted_signed_and_verifies_with_standardwebhooks(
    database_url: str, receiver: Receiver
) -> None:
    async with running_app(notify_settings(database_url, receiver)) as (_, client):
        await client.put("/v1/printess/jobs/job-1", json={"reference": "R"}, headers=AUTH)
        await observe(database_url, "6912", "received")
        await wait_for(delivered_count(receiver, 2))
        feed = (await client.get("/v1/events", headers=AUTH)).json()["items"]

    assert all(r.verified for r in receiver.received)
    ids = await event_ids(database_url)
    # Two subjects: each event once (order is promised only within a subject).
    assert sorted(receiver.ids()) == sorted([f"evt_{ids[0]}", f"evt_{ids[1]}"])
    # The body is the feed item itself.
    assert sorted(receiver.delivered_payloads(), key=lambda e: e["id"]) == feed
    first = receiver.received[0].headers
    assert first["content-type"] == "application/json"
    assert abs(int(first["webhook-timestamp"]) - time.time()) < 60
    rows = await deliveries(database_url)
    assert [(d.state, d.attempts, d.last_status) for d in rows] == [("delivered", 1, 200)] * 2


async def test_during_a_secret_rotation_either_key_verifies(
    database_url: str, receiver: Receiver
) -> None:
    old = new_secret()
    settings = notify_settings(database_url, receiver, notify_secrets=f"{old},{receiver.secret}")
    async with running_app(settings):
        await observe(database_url, "1", "received")
        await wait_for(delivered_count(receiver, 1))
    request = receiver.received[0]
    assert request.verified
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    # A receiver still holding only the old key accepts the same request.
    assert Webhook(old).verify(request.body, request.headers)["subject"]["id"] == "1"


async def test_a_receiver_with_another_key_refuses_the_signature(
    database_url: str, receiver: Receiver
) -> None:
    settings = notify_settings(database_url, receiver, notify_secrets=new_secret())
    async with running_app(settings):
        await observe(database_url, "2", "received")

        async def attempted() -> bool:
            return len(receiver.received) >= 1

        await wait_for(attempted)
    assert not receiver.received[0].verified
    assert receiver.received[0].status == 401


async def test_a_receiver_failing_three_times_gets_the_event_once_per_failure_then_once(
    database_url: str, receiver: Receiver
) -> None:
    failing: list[str] = []

    def script(webhook_id: str, n: int) -> tuple[int, dict[str, str], float]:
        failing.append(failing[0] if failing else webhook_id)
        return (500 if webhook_id == failing[0] and n <= 3 else 200), {}, 0.0

    receiver.script = script
    async with running_app(notify_settings(database_url, receiver)) as (_, client):
        await observe(database_url, "3", "received")
        await wait_for(delivered_count(receiver, 1))
        # Another event goes through afterwards; the first one is not sent again.
        await observe(database_url, "4", "received")
        await wait_for(delivered_count(receiver, 2))
        metrics = (await client.get("/metrics")).text
    first, second = await event_ids(database_url)
    assert receiver.ids() == [f"evt_{first}"] * 4 + [f"evt_{second}"]
    assert [r.status for r in receiver.received] == [500, 500, 500, 200, 200]
    row = (await deliveries(database_url))[0]
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 4, 200, None)
    assert 'printhook_delivery_attempts_total{outcome="http_error"}' in metrics
    assert "printhook_pending_deliveries 0.0" in metrics


async def test_a_receiver_slower_than_the_timeout_is_retried(
    database_url: str, receiver: Receiver
) -> None:
    receiver.script = lambda webhook_id, n: (200, {}, 1.5 if n == 1 else 0.0)
    settings = notify_settings(database_url, receiver, notify_timeout="0.3")
    async with running_app(settings):
        await observe(database_url, "5", "received")

        async def delivered_twice() -> list[Delivery]:
            rows = await deliveries(database_url)
            return rows if rows and rows[0].state == "delivered" else []

        (row,) = await wait_for(delivered_twice)
    assert row.attempts == 2


async def test_retry_after_is_honoured_on_429(database_url: str, receiver: Receiver) -> None:
    receiver.script = lambda webhook_id, n: (
        (429, {"Retry-After": "1"}, 0.0) if n == 1 else (200, {}, 0.0)
    )
    async with running_app(notify_settings(database_url, receiver)):
        await observe(database_url, "6", "received")
        await wait_for(delivered_count(receiver, 1))
    throttled, delivered = receiver.received
    assert throttled.status == 429
    # The schedule alone would have retried after about 0.05 s.
    assert delivered.at - throttled.at >= 0.95


async def test_a_redirect_is_not_followed_and_failed_deliveries_can_be_sent_again(
    database_url: str, receiver: Receiver
) -> None:
    elsewhere = receiver.url.replace("/hook", "/elsewhere")
    receiver.script = lambda webhook_id, n: (307, {"Location": elsewhere}, 0.0)
    settings = notify_settings(database_url, receiver, notify_schedule="0.05,0.05")
    async with running_app(settings) as (_, client):
        await observe(database_url, "7", "received")

        async def failed() -> list[dict[str, object]]:
            answer = await client.get("/v1/deliveries", params={"state": "failed"}, headers=AUTH)
            items: list[dict[str, object]] = answer.json()["items"]
            return items

        (item,) = await wait_for(failed)
        assert item["attempts"] == 3
        assert item["lastStatus"] == 307
        assert "redirect not followed" in str(item["lastError"])
        assert receiver.elsewhere_hits == 0
        assert len(receiver.ids()) == 3

        receiver.script = lambda webhook_id, n: (200, {}, 0.0)
        event_id = item["eventId"]
        again = await client.post(f"/v1/events/{event_id}/redeliver", headers=AUTH)
        assert again.status_code == 202
        assert again.json()["state"] == "pending"
        await wait_for(delivered_count(receiver, 1))

        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        bulk = await client.post("/v1/deliveries/redeliver", params={"since": since}, headers=AUTH)
        assert bulk.status_code == 202
        assert bulk.json() == {"redelivered": 1}
        await wait_for(delivered_count(receiver, 2))

        for params in ({"state": "lost"}, {"cursor": "9" * 30}, {"cursor": "-1"}, {"limit": 0}):
            answer = await client.get("/v1/deliveries", params=params, headers=AUTH)
            assert answer.status_code == 422, params
            assert answer.headers["content-type"] == "application/problem+json"
        missing = await client.post("/v1/events/999999/redeliver", headers=AUTH)
        assert missing.status_code == 404
        absurd = await client.post(f"/v1/events/{10**20}/redeliver", headers=AUTH)
        assert absurd.status_code == 422
        bad = await client.post("/v1/deliveries/redeliver", params={"since": "soon"}, headers=AUTH)
        assert bad.status_code == 400  # the same rule as every time in a query: RFC 3339
        naive = await client.post(
            "/v1/deliveries/redeliver", params={"since": "2026-01-01T00:00:00"}, headers=AUTH
        )
        assert naive.status_code == 400
    assert receiver.ids(status=200) == [f"evt_{event_id}"] * 2
    assert receiver.elsewhere_hits == 0


async def test_410_gone_disables_delivery_everywhere_until_enabled(
    database_url: str, receiver: Receiver
) -> None:
    gone = {"on": True}
    receiver.script = lambda webhook_id, n: (410 if gone["on"] else 200, {}, 0.0)
    async with running_app(notify_settings(database_url, receiver)) as (_, client):
        await observe(database_url, "8", "received")

        async def disabled() -> bool:
            status = (await client.get("/v1/notify", headers=AUTH)).json()
            return bool(status["disabled"])

        await wait_for(disabled)
        await observe(database_url, "9", "received")

        async def state_updated_at() -> datetime:
            async with db_session(database_url) as session:
                state = await session.get(NotifyState, 1)
                assert state is not None
                return state.updated_at

        # Let the notifier make a few more passes while disabled: nothing is sent.
        for _ in range(3):
            seen = await state_updated_at()

            async def next_pass(seen: datetime = seen) -> bool:
                return await state_updated_at() > seen

            await wait_for(next_pass)
        assert receiver.ids() == [receiver.ids()[0]]
        status = (await client.get("/v1/notify", headers=AUTH)).json()
        assert status["pending"] == 2
        assert status["disabledReason"] == "the receiver answered 410 Gone"
        metrics = (await client.get("/metrics")).text
        assert "printhook_deliveries_disabled 1.0" in metrics

        gone["on"] = False
        enabled = await client.post("/v1/notify/enable", headers=AUTH)
        assert enabled.status_code == 200
        assert enabled.json()["disabled"] is False
        await wait_for(delivered_count(receiver, 2))
    first, second = await event_ids(database_url)
    # The refused first attempt, then both events once (two subjects: no order between them).
    ids = receiver.ids()
    assert ids[0] == f"evt_{first}"
    assert sorted(ids[1:]) == sorted([f"evt_{first}", f"evt_{second}"])


async def test_without_a_notify_url_nothing_is_queued(database_url: str) -> None:
    settings = make_settings(database_url)
    async with running_app(settings) as (app, client):
        await observe(database_url, "10", "received")
        summary = await Notifier(settings).run_once(app.state.ctx)
        status = (await client.get("/v1/notify", headers=AUTH)).json()
        redeliver = await client.post(
            "/v1/deliveries/redeliver?since=2026-01-01T00:00:00Z", headers=AUTH
        )
    assert summary.enqueued == 0
    assert await deliveries(database_url) == []
    assert status["configured"] is False
    assert redeliver.status_code == 409


async def test_events_recorded_before_delivery_began_are_not_pushed(
    database_url: str, receiver: Receiver
) -> None:
    async with running_app(make_settings(database_url)):
        await observe(database_url, "11", "received")
    async with running_app(notify_settings(database_url, receiver)):
        await observe(database_url, "12", "received")
        await wait_for(delivered_count(receiver, 1))
    _, later = await event_ids(database_url)
    assert receiver.ids() == [f"evt_{later}"]
    assert [d.event_id for d in await deliveries(database_url)] == [later]


async def test_each_subject_is_delivered_in_order_while_the_receiver_fails_now_and_then(
    database_url: str, receiver: Receiver
) -> None:
    receiver.script = lambda webhook_id, n: (
        (503 if (hash(webhook_id) + n) % 3 == 0 and n < 4 else 200),
        {},
        0.0,
    )
    async with running_app(notify_settings(database_url, receiver)):
        for k in range(6):
            for subject in ("a", "b", "c"):
                await observe(database_url, subject, "received", description=f"step {k}")
        await wait_for(delivered_count(receiver, 18), timeout=60)
    assert len(set(receiver.ids(status=200))) == 18
    assert any(r.status == 503 for r in receiver.received)
    for subject in ("a", "b", "c"):
        arrivals = [
            int(r.webhook_id.removeprefix("evt_"))
            for r in receiver.received
            if r.payload and r.payload["subject"]["id"] == subject
        ]
        # Retries of event n come before event n+1, never after.
        assert arrivals == sorted(arrivals), subject


@pytest.mark.postgres_only
async def test_two_notifiers_on_one_postgres_send_each_attempt_once(
    database_url: str, receiver: Receiver
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is a single-process database")
    receiver.script = lambda webhook_id, n: (500 if n == 1 else 200, {}, 0.0)
    settings = notify_settings(database_url, receiver)
    async with running_app(settings) as (one, _), running_app(settings) as (two, _):
        ctx_one: AppContext = one.state.ctx
        ctx_two: AppContext = two.state.ctx
        assert ctx_one.instance_id != ctx_two.instance_id
        for n in range(30):
            await observe(database_url, f"pair-{n % 10}", "received", description=f"{n}")
        await wait_for(delivered_count(receiver, 30), timeout=60)
    ids = receiver.ids()
    assert len(set(ids)) == 30
    # One failed attempt and one successful attempt per event: nothing sent twice.
    assert sorted(ids) == sorted([*set(ids), *set(ids)])
    rows = await deliveries(database_url)
    assert {(d.state, d.attempts) for d in rows} == {("delivered", 2)}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"notify_schedule": "5s,soon"}, "PRINTHOOK_NOTIFY_SCHEDULE"),
        ({"notify_secrets": "whsec_not*base64"}, "PRINTHOOK_NOTIFY_SECRETS"),
        ({"notify_url": "ftp://shop.example/hook"}, "PRINTHOOK_NOTIFY_URL"),
    ],
)
def test_unusable_notify_settings_refuse_to_start_and_never_echo_the_secret(
    overrides: dict[str, str], named: str
) -> None:
    values = {
        "notify_url": "https://shop.example/hook",
        "notify_secrets": new_secret(),
        **overrides,
    }
    # Refused when the settings are read (the schedule) or when the notifier starts.
    refusal: ConfigurationError | None = None
    try:
        settings = load_settings(
            _env_file=None, database_url="sqlite+aiosqlite:///unused.db", **values
        )
    except ConfigurationError as exc:
        refusal = exc
    else:
        with pytest.raises(ConfigurationError) as raised:
            Notifier(settings)
        refusal = raised.value
    assert named in str(refusal)
    assert "not*base64" not in str(refusal)


async def test_a_commit_of_new_events_wakes_the_notifier_at_once(
    database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polling alone would take half a minute here.
    monkeypatch.setattr(notifier, "POLL_SECONDS", 30.0)
    async with running_app(notify_settings(database_url, receiver)) as (_, client):

        async def first_pass_done() -> bool:
            async with db_session(database_url) as session:
                return await session.get(NotifyState, 1) is not None

        await wait_for(first_pass_done)
        started = time.monotonic()
        await client.put("/v1/printess/jobs/wake-1", headers=AUTH)
        await wait_for(delivered_count(receiver, 1), timeout=10)
    assert time.monotonic() - started < 10
