"""Only bodies signed with a configured key, over the exact bytes, are accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from app.inbound.models import InboundEvent
from app.printmotor.models import PrintmotorOrder
from app.printmotor.signature import sign
from tests.printmotor.conftest import (
    OLD_SECRET,
    SECRET,
    count_rows,
    created,
    delivered,
    order_row,
    pm_settings,
    post_webhook,
)
from tests.support.helpers import running_app

EXAMPLE = delivered(
    6912,
    reference="2017-0821-3121-0192",
    tracking_code="MA0943165000000107801",
    delivery_time="2017-08-24T14:57:56",
)


async def _nothing_stored(database_url: str) -> None:
    assert await count_rows(database_url, InboundEvent) == 0
    assert await count_rows(database_url, PrintmotorOrder) == 0


async def test_valid_base64_signature_is_accepted(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {"ok": True, "eventId": 1}
    assert len(response.content) < 1024
    row = await order_row(database_url, 6912)
    assert row is not None
    assert row.status == "delivered"


async def test_base64_without_padding_and_with_whitespace_is_accepted(database_url: str) -> None:
    header = " " + sign(EXAMPLE, SECRET).rstrip("=") + "\n"
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE, headers={"X-Printmotor-Hmac-SHA256": header})
    assert response.status_code == 200


@pytest.mark.parametrize("upper", [False, True])
async def test_valid_hex_signature_is_accepted(database_url: str, upper: bool) -> None:
    digest = hmac.new(SECRET.encode(), EXAMPLE, hashlib.sha256).hexdigest()
    header = digest.upper() if upper else digest
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE, headers={"X-Printmotor-Hmac-SHA256": header})
    assert response.status_code == 200
    assert (await order_row(database_url, 6912)) is not None


async def test_second_key_during_rotation_is_accepted(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE, secret=OLD_SECRET)
    assert response.status_code == 200
    assert (await order_row(database_url, 6912)) is not None


async def test_unknown_key_is_unauthorized_and_nothing_is_stored(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE, secret="some-other-key-0123456789")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    await _nothing_stored(database_url)


async def test_tampered_body_is_unauthorized_and_good_data_stays(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        good = await post_webhook(client, created(6912, reference="R-1"))
        tampered = EXAMPLE.replace(b"MA0943165000000107801", b"MA0000000000000000000")
        response = await post_webhook(
            client, tampered, headers={"X-Printmotor-Hmac-SHA256": sign(EXAMPLE, SECRET)}
        )
    assert good.status_code == 200
    assert response.status_code == 401
    row = await order_row(database_url, 6912)
    assert row is not None
    assert (row.status, row.tracking_code) == ("received", None)
    assert await count_rows(database_url, InboundEvent) == 1


async def test_reserialised_json_with_the_original_signature_is_unauthorized(
    database_url: str,
) -> None:
    # What an integrator verifying JSON.stringify(parsed) would produce: same data, other bytes.
    reserialised = json.dumps(json.loads(EXAMPLE), separators=(",", ":")).encode()
    assert reserialised != EXAMPLE
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(
            client, reserialised, headers={"X-Printmotor-Hmac-SHA256": sign(EXAMPLE, SECRET)}
        )
    assert response.status_code == 401
    await _nothing_stored(database_url)


async def test_missing_signature_header_is_unauthorized(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(client, EXAMPLE, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    await _nothing_stored(database_url)


async def test_garbage_signature_header_is_unauthorized(database_url: str) -> None:
    async with running_app(pm_settings(database_url)) as (_, client):
        response = await post_webhook(
            client, EXAMPLE, headers={"X-Printmotor-Hmac-SHA256": "not-a-signature!"}
        )
    assert response.status_code == 401
    await _nothing_stored(database_url)


async def test_no_configured_keys_rejects_even_correctly_signed_bodies(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = pm_settings(database_url, printmotor_webhook_secrets="")
    async with running_app(settings) as (_, client):
        first = await post_webhook(client, EXAMPLE)
        second = await post_webhook(client, EXAMPLE)
    assert (first.status_code, second.status_code) == (401, 401)
    await _nothing_stored(database_url)
    warnings = [r for r in caplog.records if r.getMessage() == "printmotor.webhook.no_secrets"]
    assert len(warnings) == 1


def test_simulator_signs_like_printmotor_base64_of_hmac_sha256() -> None:
    expected = base64.b64encode(hmac.new(b"k", b"body", hashlib.sha256).digest()).decode()
    assert sign(b"body", "k") == expected
