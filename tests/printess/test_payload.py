"""Whatever a vendor or shop sends, the Printess parser answers a JobStatus or PayloadError with
a reason, and nothing unstorable reaches the database or Printess (issue 7's input hygiene)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.printess import service
from app.printess.schemas import JobStatus, PayloadError, parse_status, parse_status_bytes
from tests.printess.conftest import Printess, printess_settings
from tests.printess.helpers import count_jobs, job_row
from tests.support.helpers import AUTH, db_session, running_app


def body(**fields: Any) -> bytes:
    return json.dumps({"jobId": "j-1", "isFailure": False, **fields}).encode()


REFUSED = {
    "nul in jobId": (b'{"jobId": "j\\u0000"}', "NUL or invalid Unicode"),
    "nul in a url": (body(result={"r": {"document": "https://f/\u0000.pdf"}}), "NUL"),
    "nul in a key": (body(result={"r\u0000": {}}), "field name"),
    "lone surrogate": (b'{"jobId": "j-1", "templateName": "\\ud800"}', "invalid Unicode"),
    "surrogate in meta": (b'{"jobId": "j-1", "meta": "\\udfff"}', "invalid Unicode"),
    "empty jobId": (b'{"jobId": " "}', "jobId is missing or empty"),
    "long jobId": (json.dumps({"jobId": "j" * 129}).encode(), "jobId is longer than 128"),
    "long externalOrderId": (body(externalOrderId="e" * 256), "externalOrderId is longer"),
    "long orderId": (body(orderId="o" * 129), "orderId is longer than 128"),
    "long templateName": (body(templateName="t" * 256), "templateName is longer"),
    "date overflowing UTC": (body(finishedOn="9999-12-31T23:59:59-14:00"), "out of range"),
    "date underflowing UTC": (body(enqueuedOn="0001-01-01T00:00:00+14:00"), "out of range"),
    "deep json": (b'{"jobId": "j", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    "deep but parseable": (body(result={"s": json.loads("[" * 40 + "]" * 40)}), "nested"),
    "NaN": (b'{"jobId": "j-1", "result": {"s": NaN}}', "JSON number"),
    "Infinity": (b'{"jobId": "j-1", "result": {"s": -Infinity}}', "JSON number"),
    "not utf-8": (b'{"jobId": "\xff"}', "not JSON"),
    "not an object": (b"[1]", "not a JSON object"),
    "huge integer": (b'{"jobId": "j", "n": ' + b"9" * 5000 + b"}", "not JSON"),
}


@pytest.mark.parametrize(("raw", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_unstorable_payloads_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_status_bytes(raw)


def test_free_text_is_cleaned_instead_of_refused() -> None:
    raw = b'{"jobId": "j-1", "isFailure": true, "failureDetails": "font\\u0000 \\ud800 missing"}'
    status = parse_status_bytes(raw)
    assert status.is_final
    assert not status.is_success
    assert status.error_text == "font ? missing"
    nested = parse_status({"jobId": "j-2", "isFailure": True, "errorDetails": {"m": "\x00"}})
    assert nested.error_text == '{"m":"\\u0000"}'


def _assert_storable(status: JobStatus) -> None:
    texts = [status.job_id, status.meta, status.order_id, status.template_name]
    texts += [status.external_order_id, status.error_text, *status.documents.values()]
    for text in texts:
        if text is not None:
            assert "\x00" not in text
            text.encode("utf-8")
    assert 0 < len(status.job_id) <= 128
    json.dumps([status.result, status.pictures], allow_nan=False).encode("utf-8")


# Any character, lone surrogates and NUL included (and often).
TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=12),
    st.sampled_from(["\x00", "\ud800", "a\udfffb", "x" * 129, "9999-12-31T23:59:59-14:00"]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=30,
)
KEYS = st.sampled_from(
    ["jobId", "isFinalStatus", "isSuccess", "isFailure", "errorDetails", "failureDetails",
     "result", "meta", "orderId", "templateName", "externalOrderId", "enqueuedOn",
     "finishedOn", "failedOn"]
)  # fmt: skip
RESULTS = st.fixed_dictionaries(
    {},
    optional={
        "r": st.dictionaries(TEXT, JSON_VALUES, max_size=3),
        "d": JSON_VALUES,
        "p": st.lists(st.fixed_dictionaries({"u": TEXT}, optional={"d": TEXT, "i": JSON_VALUES})),
        "meta": JSON_VALUES,
    },
)
PRINTESS_LIKE = st.dictionaries(
    KEYS,
    st.one_of(JSON_VALUES, RESULTS, TEXT, st.datetimes().map(lambda d: d.isoformat() + "-14:00")),
    max_size=10,
).map(lambda d: {"jobId": "j-1", **d} if "jobId" not in d else d)


def _parse_or_refuse(raw: bytes) -> None:
    try:
        status = parse_status_bytes(raw)
    except PayloadError as exc:
        reason = str(exc)
    else:
        _assert_storable(status)
        return
    assert reason, "a PayloadError must carry its reason"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_status_or_payload_error(raw: bytes) -> None:
    _parse_or_refuse(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON_VALUES, PRINTESS_LIKE))
def test_arbitrary_json_gives_a_storable_status_or_payload_error(value: object) -> None:
    # json.dumps escapes lone surrogates and NUL, as a sender's JSON encoder would.
    _parse_or_refuse(json.dumps(value).encode())


async def test_cleaned_failure_is_stored_and_read_back_on_both_databases(
    database_url: str,
) -> None:
    raw = (
        b'{"jobId": "j-1", "isFailure": true, "failureDetails": "bad\\u0000 \\udc80 font",'
        b' "result": {"r": null, "ff": "https://f/\\u00e9.json"}}'
    )
    status = parse_status_bytes(raw)
    async with db_session(database_url) as session:
        job, _ = await service.ensure_job(session, "j-1", event_type="t", next_poll_at=None)
        assert await service.apply_status(session, job, status, finalized_by="callback")
        await session.commit()
    row = await job_row(database_url, "j-1")
    assert row is not None
    assert (row.status, row.error_text) == ("failed", "bad ? font")
    assert row.result == {"r": None, "ff": "https://f/\u00e9.json"}


CARD = {"templateName": "card", "origin": "shop"}
BAD_SUBMISSIONS = {
    "long templateName": json.dumps({**CARD, "templateName": "t" * 256}).encode(),
    "long reference": json.dumps({**CARD, "reference": "r" * 256}).encode(),
    "long externalOrderId": json.dumps({**CARD, "externalOrderId": "e" * 256}).encode(),
    "non-string externalOrderId": json.dumps({**CARD, "externalOrderId": 7}).encode(),
    "NUL in templateName": json.dumps({**CARD, "templateName": "ca\u0000rd"}).encode(),
    "NUL in meta": json.dumps({**CARD, "meta": "m\u0000"}).encode(),
    "object meta": json.dumps({**CARD, "meta": {"line": 1}}).encode(),
    "surrogate in origin": b'{"templateName": "card", "origin": "\\ud800"}',
    "NUL deep in outputSettings": json.dumps(
        {**CARD, "outputSettings": {"a": ["\u0000"]}}
    ).encode(),
    "NaN": b'{"templateName": "card", "origin": "shop", "dpi": NaN}',
}


@pytest.mark.parametrize("raw", BAD_SUBMISSIONS.values(), ids=BAD_SUBMISSIONS.keys())
async def test_unstorable_submission_is_refused_before_calling_printess(
    database_url: str, printess: Printess, raw: bytes
) -> None:
    settings_ = printess_settings(database_url, printess.url)
    async with running_app(settings_) as (_, client):
        good = await client.post(
            "/v1/printess/jobs", json={**CARD, "reference": "keep"}, headers=AUTH
        )
        answer = await client.post(
            "/v1/printess/jobs",
            content=raw,
            headers={**AUTH, "Content-Type": "application/json", "Idempotency-Key": "k-1"},
        )
        kept = await client.get(f"/v1/printess/jobs/{good.json()['jobId']}", headers=AUTH)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert len(printess.sim.calls_to("produce")) == 1
    assert await count_jobs(database_url) == 1
    assert kept.json()["reference"] == "keep"


async def test_overlong_idempotency_key_is_refused_before_calling_printess(
    database_url: str, printess: Printess
) -> None:
    async with running_app(printess_settings(database_url, printess.url)) as (_, client):
        answer = await client.post(
            "/v1/printess/jobs", json=CARD, headers={**AUTH, "Idempotency-Key": "k" * 256}
        )
    assert answer.status_code == 422
    assert printess.sim.calls_to("produce") == []
