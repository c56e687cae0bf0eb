"""Whatever a signed body holds, parsing gives an Observation or InvalidPayload with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import ConfigurationError, load_settings
from app.printmotor.parsing import InvalidPayload, parse_user_order, parse_webhook, zone
from app.printmotor.transition import Observation


def body(user_order: dict[str, Any], event_type: object = "USER_ORDER_DELIVERED") -> bytes:
    return json.dumps({"eventType": event_type, "userOrder": user_order}).encode()


def rejected(raw: bytes) -> str:
    with pytest.raises(InvalidPayload) as caught:
        parse_webhook(raw)
    return str(caught.value)


def test_the_published_webhook_example_parses() -> None:
    example = {
        "eventType": "USER_ORDER_DELIVERED",
        "userOrder": {
            "deliveryTime": "2017-08-24T14:57:56",
            "estimatedDeliveryTime": "2017-08-25T12:00",
            "meta": {
                "externalTrackingLinks": [{"absoluteUrl": "https://t.example/JJFI"}],
                "reference": "SHOP-1",
                "trackingCode": "JJFI",
            },
            "orderNumber": 6912,
            "postalClass": "EXPRESS",
            "processingStatusDescription": "Delivered",
        },
    }
    obs = parse_webhook(json.dumps(example, indent=2).encode())
    assert obs.order_number == "6912"
    assert obs.status == "delivered"
    assert obs.delivery_time == datetime(2017, 8, 24, 14, 57, 56, tzinfo=UTC)
    assert obs.delivery_time_raw == "2017-08-24T14:57:56"
    assert obs.estimated_delivery_time_raw == "2017-08-25T12:00"
    assert obs.tracking_links == ("https://t.example/JJFI",)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(6912, "6912"), ("6912", "6912"), (" 42 ", "42"), ("007", "7"), (10**18 - 1, "9" * 18)],
)
def test_order_numbers_are_positive_integers_in_canonical_form(
    given: object, expected: str
) -> None:
    assert parse_webhook(body({"orderNumber": given})).order_number == expected


@pytest.mark.parametrize(
    "given",
    [
        "../admin",
        "7/../../order",
        "7?x=1",
        "7#x",
        "%2e%2e",
        "A-17",
        "",
        "١٢",  # Arabic-Indic digits: str.isdigit() says yes, Printmotor does not
        0,
        -5,
        6.0,
        True,
        None,
        [7],
        {"n": 7},
        10**18,
        "1" * 19,
        "9" * 200,
    ],
)
def test_anything_but_a_sane_positive_integer_order_number_is_rejected(given: object) -> None:
    assert "orderNumber" in rejected(body({"orderNumber": given}))


def test_a_200_digit_json_integer_order_number_is_rejected() -> None:
    raw = b'{"eventType":"USER_ORDER_CREATED","userOrder":{"orderNumber":' + b"9" * 200 + b"}}"
    assert "orderNumber" in rejected(raw)


@pytest.mark.parametrize(
    ("user_order", "event_type", "named"),
    [
        ({"orderNumber": 1, "meta": {"reference": "R\x00"}}, "X", "meta.reference"),
        ({"orderNumber": 1, "meta": {"reference": "R\ud800"}}, "X", "meta.reference"),
        ({"orderNumber": 1, "meta": {"reference": "r" * 256}}, "X", "meta.reference"),
        ({"orderNumber": 1}, "E" * 65, "eventType"),
        ({"orderNumber": 1}, "USER\x00ORDER", "eventType"),
        ({"orderNumber": 1, "processingStatus": "S" * 65}, "X", "processingStatus"),
        ({"orderNumber": 1, "postalClass": "P\udfff"}, "X", "postalClass"),
        ({"orderNumber": 1, "meta": {"trackingCode": "T" * 256}}, "X", "trackingCode"),
        (
            {"orderNumber": 1, "meta": {"externalTrackingLinks": [{"absoluteUrl": "h\x00"}]}},
            "X",
            "absoluteUrl",
        ),
        ({"orderNumber": 1, "deliveryTime": "2026-11-23T10:00\x00"}, "X", "deliveryTime"),
        ({"orderNumber": 1, "deliveryTime": "2" * 65}, "X", "deliveryTime"),
        (
            {"orderNumber": 1, "deliveryTime": "9999-12-31T23:59:59-14:00"},
            "X",
            "deliveryTime is out of range",
        ),
        (
            {"orderNumber": 1, "estimatedDeliveryTime": "0001-01-01T00:00:00+14:00"},
            "X",
            "estimatedDeliveryTime is out of range",
        ),
    ],
)
def test_values_the_database_would_refuse_are_rejected_with_the_field_named(
    user_order: dict[str, Any], event_type: str, named: str
) -> None:
    # json.dumps writes lone surrogates and NUL as \\u escapes, exactly as a sender could.
    assert named in rejected(body(user_order, event_type))


def test_free_text_is_cleaned_not_rejected() -> None:
    obs = parse_webhook(
        body({"orderNumber": 3, "processingStatusDescription": "In\x00 production \ud800"})
    )
    assert obs.description == "In production \ufffd"


def test_a_naive_maximum_date_read_in_a_zone_west_of_utc_is_rejected_not_raised() -> None:
    raw = body({"orderNumber": 3, "deliveryTime": "9999-12-31T23:59:59"})
    with pytest.raises(InvalidPayload, match="out of range"):
        parse_webhook(raw, tz="America/New_York")


def test_unparseable_timestamps_keep_their_raw_text() -> None:
    obs = parse_webhook(body({"orderNumber": 3, "deliveryTime": "tomorrow-ish"}))
    assert (obs.delivery_time, obs.delivery_time_raw) == (None, "tomorrow-ish")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"eventType": "X"}', "userOrder"),
        (b'{"eventType": "X", "userOrder": [1]}', "userOrder"),
    ],
)
def test_broken_bodies_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    assert reason in rejected(raw)


def test_naive_timestamps_are_read_in_the_configured_zone() -> None:
    obs = parse_user_order(
        {"orderNumber": 5, "deliveryTime": "2026-07-01T12:00", "estimatedDeliveryTime": "x"},
        event_type="USER_ORDER_DELIVERED",
        tz=zone("Europe/Helsinki"),
    )
    # Helsinki is UTC+3 in summer.
    assert obs.delivery_time == datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert obs.delivery_time_raw == "2026-07-01T12:00"


def test_an_unknown_time_zone_fails_at_startup_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="PRINTHOOK_PRINTMOTOR_TIMEZONE"):
        load_settings(_env_file=None, printmotor_timezone="Europe/Atlantis")
    with pytest.raises(ConfigurationError, match="PRINTHOOK_PRINTMOTOR_TIMEZONE"):
        load_settings(_env_file=None, printmotor_timezone="../../etc/passwd")
    assert load_settings(_env_file=None, printmotor_timezone="Europe/Helsinki")


# Any code point, lone surrogates and NUL included (JSON can carry them as \u escapes).
any_text = st.text(alphabet=st.characters(exclude_categories=[]), max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Strings with a NUL or a lone surrogate somewhere.
poisoned = st.builds(
    lambda head, bad, tail: head + bad + tail,
    st.text(max_size=5),
    st.sampled_from(["\x00", "\ud800", "\udfff"]),
    st.text(max_size=5),
)
# Values that look like Printmotor's, mixed with anything: reach past the first checks.
field_values = (
    json_values
    | poisoned
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.from_regex(r"[0-9]{1,25}", fullmatch=True)
    | any_text
    | st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00", "2017-08-25T12:00"])
)
user_orders = st.fixed_dictionaries(
    # Mostly a good order number, so that the other fields are reached.
    {"orderNumber": st.integers(min_value=1, max_value=10**18 - 1) | field_values},
    optional={
        "processingStatus": field_values,
        "processingStatusDescription": field_values,
        "postalClass": field_values,
        "deliveryTime": field_values,
        "estimatedDeliveryTime": field_values,
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "reference": field_values,
                "trackingCode": field_values,
                "externalTrackingLinks": st.lists(
                    st.fixed_dictionaries({"absoluteUrl": field_values}) | json_values,
                    max_size=3,
                )
                | json_values,
            },
        )
        | json_values,
    },
)


def _only_observation_or_invalid(raw: bytes) -> None:
    try:
        obs = parse_webhook(raw, tz=ZoneInfo("Pacific/Kiritimati"))
    except InvalidPayload as exc:
        reason = str(exc)
        assert reason, "InvalidPayload without a reason"
        return
    assert isinstance(obs, Observation)
    texts = (
        obs.order_number,
        obs.reference,
        obs.event_type,
        obs.description,
        obs.processing_status,
        obs.postal_class,
        obs.tracking_code,
        obs.delivery_time_raw,
        obs.estimated_delivery_time_raw,
        *obs.tracking_links,
    )
    assert obs.order_number.isascii()
    assert obs.order_number.isdigit()
    for text in texts:
        if text is not None:
            assert "\x00" not in text
            text.encode("utf-8")  # no lone surrogates: storable in PostgreSQL


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_give_an_observation_or_invalid_payload(raw: bytes) -> None:
    _only_observation_or_invalid(raw)


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_arbitrary_json_gives_an_observation_or_invalid_payload(payload: object) -> None:
    _only_observation_or_invalid(json.dumps(payload).encode())


@settings(max_examples=500, deadline=None)
@given(event_type=field_values, user_order=user_orders)
def test_arbitrary_printmotor_shaped_json_gives_an_observation_or_invalid_payload(
    event_type: object, user_order: dict[str, Any]
) -> None:
    _only_observation_or_invalid(body(user_order, event_type))
