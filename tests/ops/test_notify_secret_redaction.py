"""The shop's Standard Webhooks secrets (PRINTHOOK_NOTIFY_SECRETS) never reach a log line.

A secret is `whsec_<base64 key>`; both the whole value and the bare key are secret.
"""

from __future__ import annotations

import base64
import logging
import os

import httpx

from app.main import create_app
from app.simulator.printmotor import signed_headers, webhook_body
from app.simulator.shop import shop_app
from tests.ops.conftest import CapturedLogs
from tests.support.helpers import make_settings, serve_in_thread, wait_for

WEBHOOK_SECRET = "notify-redaction-webhook-key-5d0e"


def new_secret() -> tuple[str, str]:
    """A fresh `whsec_` secret and its bare key (fresh per test: redaction is process-wide)."""
    key = base64.b64encode(os.urandom(24)).decode()
    return f"whsec_{key}", key


def assert_absent(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}... leaked"


async def test_a_delivered_notification_logs_neither_the_notify_secret_nor_its_key(
    database_url: str, logs: CapturedLogs
) -> None:
    current, current_key = new_secret()
    retired, retired_key = new_secret()
    received: list[str] = []
    with serve_in_thread(shop_app([current], out=received.append)) as shop_url:
        settings = make_settings(
            database_url,
            printmotor_webhook_secrets=WEBHOOK_SECRET,
            # A rotation: both secrets sign every delivery.
            notify_url=f"{shop_url}/webhooks",
            notify_secrets=f"{current},{retired}",
            run_workers=True,
            reconcile_interval=3600,
            printmotor_api_url="http://127.0.0.1:9",
        )
        with serve_in_thread(create_app(settings)) as base:
            body = webhook_body(4711, "USER_ORDER_CREATED", reference="shop-4711")
            async with httpx.AsyncClient(base_url=base) as client:
                answer = await client.post(
                    "/webhooks/printmotor",
                    content=body,
                    headers=signed_headers(body, WEBHOOK_SECRET),
                )
            assert answer.status_code == 200

            async def delivered() -> bool:
                return bool(logs.events("notify.delivery.delivered"))

            await wait_for(delivered)
    # The receiver verified the delivery with the secret printhook must not log.
    assert [line.split()[1:3] for line in received] == [
        ["printmotor.order.received", "printmotor_order:4711"]
    ]
    assert_absent(logs.text, current, current_key, retired, retired_key)


async def test_an_error_quoting_a_notify_secret_is_logged_redacted(
    database_url: str, logs: CapturedLogs
) -> None:
    secret, key = new_secret()
    settings = make_settings(
        database_url, notify_url="http://127.0.0.1:9/webhooks", notify_secrets=secret
    )
    # Building the app registers the configuration's secrets, as `printhook serve` does.
    create_app(settings)
    log = logging.getLogger("printhook.notify")
    # Whatever quotes the secret, a library's exception or a field, is scrubbed.
    try:
        raise ValueError(f"cannot sign with {secret} (key {key})")
    except ValueError as exc:
        log.exception("notify.sign.failed", extra={"detail": str(exc)})

    assert_absent(logs.text, secret, key)
    failed = logs.events("notify.sign.failed")
    assert len(failed) == 1
    assert failed[0]["detail"] == "cannot sign with *** (key ***)"
    assert "cannot sign with *** (key ***)" in failed[0]["exc_info"]
