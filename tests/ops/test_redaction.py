"""No secret in any log line or error, during realistic traffic on the real endpoints.

Secrets: shop API keys (right and wrong), the Printess service token, per-job callback tokens
and the shared callback secret (they are URL path segments), Printmotor HMAC keys and the
signatures themselves, the Printmotor password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx

from app.main import create_app
from app.simulator.printess import PrintessSimulator, SimulatorConfig
from app.simulator.printmotor import signed_headers, webhook_body
from tests.ops.conftest import CapturedLogs
from tests.support.helpers import AUTH, SHOP_KEY, make_settings, serve_in_thread, wait_for

SERVICE_TOKEN = "redaction-service-token-7a1f"
CALLBACK_SECRET = "redaction-callback-secret-93be"
WEBHOOK_SECRET = "redaction-webhook-key-c04d"
PRINTMOTOR_PASSWORD = "redaction-printmotor-pass-51e2"
WRONG_KEY = "redaction-wrong-shop-key-0d6c"
WRONG_TOKEN = "redaction-wrong-callback-token-ee31"


def assert_absent(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret[:12]}... leaked"


async def test_traffic_with_every_kind_of_secret_logs_none_of_them(
    database_url: str, logs: CapturedLogs
) -> None:
    printess = PrintessSimulator(SimulatorConfig(token=SERVICE_TOKEN, delay=0.1))
    good_body = webhook_body(3100, "USER_ORDER_DELIVERED", tracking_code="JJ1")
    good_signature = signed_headers(good_body, WEBHOOK_SECRET)
    forged = base64.b64encode(hmac.new(b"not-the-key", good_body, hashlib.sha256).digest()).decode()
    with serve_in_thread(printess.create_app()) as printess_url:
        settings = make_settings(
            database_url,
            printess_api_url=printess_url,
            printess_service_token=SERVICE_TOKEN,
            printess_callback_secret=CALLBACK_SECRET,
            printmotor_webhook_secrets=WEBHOOK_SECRET,
            printmotor_username="printhook",
            printmotor_password=PRINTMOTOR_PASSWORD,
            printmotor_service="printhook-service",
            printess_status_rate=50,
            # The real background applier (and its logs) takes part.
            run_workers=True,
            reconcile_interval=3600,
            printmotor_api_url="http://127.0.0.1:9",
        )
        with serve_in_thread(create_app(settings)) as base:
            printess.config.callback_base_url = base
            async with httpx.AsyncClient(base_url=base) as client:
                answers = [
                    await client.get("/v1/printess/jobs", headers={"Authorization": WRONG_KEY}),
                    await client.get(
                        "/v1/printess/jobs", headers={"Authorization": f"Bearer {WRONG_KEY}"}
                    ),
                    await client.post(
                        "/webhooks/printmotor",
                        content=good_body,
                        headers={"X-Printmotor-Hmac-SHA256": forged},
                    ),
                    await client.post(f"/callbacks/printess/{WRONG_TOKEN}", content=b"{}"),
                    await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", content=b"[1,"),
                ]
                assert [a.status_code for a in answers] == [401, 401, 401, 404, 400]
                for answer in answers:
                    assert_absent(answer.text, WRONG_KEY, forged, WRONG_TOKEN, CALLBACK_SECRET)

                delivered = await client.post(
                    "/webhooks/printmotor", content=good_body, headers=good_signature
                )
                assert delivered.status_code == 200
                submitted = await client.post(
                    "/v1/printess/jobs",
                    json={"templateName": "card", "origin": "shop"},
                    headers=AUTH,
                )
                assert submitted.status_code == 201
                job_id = submitted.json()["jobId"]

                async def finished() -> bool:
                    got = await client.get(f"/v1/printess/jobs/{job_id}", headers=AUTH)
                    return bool(got.json()["isFinal"])

                await wait_for(finished)
    # The per-job token printhook minted and put into the callbackUrl it sent to Printess.
    callback_url = printess.jobs[job_id].callback_url
    assert callback_url is not None
    job_token = callback_url.rsplit("/", 1)[1]
    assert len(job_token) >= 16

    text = logs.text
    assert_absent(
        text,
        SHOP_KEY,
        WRONG_KEY,
        SERVICE_TOKEN,
        CALLBACK_SECRET,
        WRONG_TOKEN,
        job_token,
        WEBHOOK_SECRET,
        forged,
        *good_signature.values(),
        PRINTMOTOR_PASSWORD,
    )
    paths = [line["path"] for line in logs.events("http.request")]
    assert paths.count("/callbacks/printess/***") >= 3
    assert not [p for p in paths if p.startswith("/callbacks/") and "***" not in p]
    # Every line is one JSON object with a stable dotted event name.
    for line in text.splitlines():
        assert isinstance(json.loads(line)["event"], str)


async def test_problem_documents_never_carry_the_callback_token(database_url: str) -> None:
    settings = make_settings(database_url, printess_callback_secret=CALLBACK_SECRET)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            rejected = await client.post(f"/callbacks/printess/{CALLBACK_SECRET}", content=b"{")
    assert rejected.status_code == 400
    assert rejected.headers["content-type"] == "application/problem+json"
    assert CALLBACK_SECRET not in rejected.text
