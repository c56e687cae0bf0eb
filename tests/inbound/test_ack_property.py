"""Whatever an authenticated vendor sends, the ack path decides without raising."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.inbound.models import PENDING, REJECTED
from app.printess.callbacks import CallbackAuth
from app.printess.callbacks import arrival_for as callback_arrival
from app.printmotor.webhook import arrival_for as webhook_arrival

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
ORDER_NUMBER = st.one_of(st.integers(), st.text(max_size=30), st.none(), st.booleans(), JSON)


def encoded(value: Any) -> bytes:
    # Not ensure_ascii: raw control characters and lone surrogates (as escapes) both occur.
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300) | JSON.map(encoded))
def test_any_signed_webhook_body_is_stored_as_pending_or_rejected(body: bytes) -> None:
    arrival = webhook_arrival(body)
    assert arrival.body == body
    assert arrival.state in (PENDING, REJECTED)
    if arrival.state == PENDING:
        assert arrival.subject_id is not None
        assert arrival.subject_id.isdigit()
    else:
        assert arrival.error


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["eventType", "userOrder", "x"]), JSON), ORDER_NUMBER)
def test_webhook_shaped_bodies_are_stored_as_pending_or_rejected(
    payload: dict[str, Any], number: Any
) -> None:
    payload = {**payload, "userOrder": {"orderNumber": number}}
    arrival = webhook_arrival(encoded(payload))
    assert arrival.state in (PENDING, REJECTED)
    if arrival.event_type is not None:
        assert len(arrival.event_type) <= 64


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.binary(max_size=300) | JSON.map(encoded) | JSON.map(lambda v: encoded({"jobId": v})),
    st.sampled_from([CallbackAuth("secret"), CallbackAuth("job:j-1", "j-1")]),
)
def test_any_authenticated_callback_body_is_stored_as_pending_or_rejected(
    body: bytes, auth: CallbackAuth
) -> None:
    arrival = callback_arrival(auth, body)
    assert arrival.body == body
    assert arrival.auth_context == auth.context
    assert arrival.state in (PENDING, REJECTED)
    if arrival.state == PENDING:
        assert arrival.subject_id
        assert len(arrival.subject_id) <= 128
        # Storable as it is on PostgreSQL: valid UTF-8, no NUL or other control character.
        arrival.subject_id.encode("utf-8")
        assert arrival.subject_id.isprintable()
        assert auth.job_id is None or arrival.subject_id == auth.job_id
