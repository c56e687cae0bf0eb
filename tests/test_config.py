"""Settings: one duration syntax, strict trusted proxies, errors that name the variable once,
the start-up summary and its warnings, and "not configured" answers that name what to set."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from app.config import ConfigurationError, Settings, load_settings
from app.logging import JsonFormatter
from app.printmotor.placement import get_placement
from app.startup import configuration_warnings, log_configuration_summary
from tests.printmotor.test_placement import order_request
from tests.support.helpers import AUTH, db_session, make_settings, running_app

DURATIONS = [
    "printmotor_stale_after",
    "reconcile_max_age",
    "printess_first_poll_after",
    "body_timeout",
    "notify_timeout",
]


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env


def problems(monkeypatch: pytest.MonkeyPatch, **variables: str) -> list[str]:
    for name, value in variables.items():
        monkeypatch.setenv(f"PRINTHOOK_{name.upper()}", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("300s", 300), ("5m", 300), ("1.5h", 5400), ("7d", 604800), ("P7D", 604800)],
)
@pytest.mark.parametrize("field", [*DURATIONS, "reconcile_interval"])
def test_every_duration_setting_accepts_the_same_forms(
    monkeypatch: pytest.MonkeyPatch, field: str, text: str, seconds: float
) -> None:
    monkeypatch.setenv(f"PRINTHOOK_{field.upper()}", text)
    value = getattr(load_settings(), field)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    assert value == seconds


@pytest.mark.parametrize("field", [*DURATIONS, "reconcile_interval", "notify_schedule"])
@pytest.mark.parametrize("text", ["1week", "-5m", "5 minutes", "m", "nan"])
def test_an_invalid_duration_is_refused_with_the_forms_to_use(
    monkeypatch: pytest.MonkeyPatch, field: str, text: str
) -> None:
    (problem,) = problems(monkeypatch, **{field: text})
    variable = f"PRINTHOOK_{field.upper()}"
    assert problem.startswith(f"{variable}: '{text}' is not a duration")
    assert "300s, 5m, 24h, 7d" in problem
    assert problem.count(variable) == 1
    assert "Value error" not in problem
    assert "invalid character" not in problem


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ("10.0.0.1", ["10.0.0.1"]),
        ("127.0.0.1, ::1 ,172.16.0.0/12", ["127.0.0.1", "::1", "172.16.0.0/12"]),
        ("fd00::/8", ["fd00::/8"]),
        ("", []),
    ],
)
def test_trusted_proxies_take_ips_and_cidrs(
    monkeypatch: pytest.MonkeyPatch, entries: str, expected: list[str]
) -> None:
    monkeypatch.setenv("PRINTHOOK_TRUSTED_PROXIES", entries)
    assert load_settings().trusted_proxies == expected


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ("not-an-ip", "'not-an-ip' is not an IP address or a CIDR network"),
        ("172.16.0.0/33", "'172.16.0.0/33' is not an IP address or a CIDR network"),
        ("10.0.0.1;10.0.0.2", "separate entries with commas"),
        ("127.0.0.1,*", "'*' is not an IP address or a CIDR network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; write the network as 10.0.0.0/8"),
    ],
)
def test_trusted_proxies_refuse_anything_else(
    monkeypatch: pytest.MonkeyPatch, entries: str, says: str
) -> None:
    (problem,) = problems(monkeypatch, trusted_proxies=entries)
    assert problem.startswith("PRINTHOOK_TRUSTED_PROXIES: ")
    assert says in problem
    assert problem.count("PRINTHOOK_TRUSTED_PROXIES") == 1


# One invalid value for every setting that can be invalid; each must be refused by name.
INVALID = {
    "environment": "prod",
    "database_url": "mysql://user:hunter2-password@db/printhook",
    "database_pool_size": "0",
    "public_base_url": "printhook.example.com",
    "log_level": "LOUD",
    "printess_api_url": "ftp://printess",
    "printess_verify_callbacks": "perhaps",
    "printess_status_rate": "0",
    "printess_first_poll_after": "soon",
    "printess_vanished_after": "0",
    "printmotor_api_url": "api.printmotor.io",
    "printmotor_stale_after": "1week",
    "printmotor_read_rate": "-1",
    "body_timeout": "10 seconds",
    "apply_batch_size": "0",
    "apply_max_attempts": "many",
    "notify_schedule": "5s,later",
    "notify_timeout": "forever",
    "run_workers": "sometimes",
    "reconcile_interval": "0",
    "reconcile_max_age": "1week",
    "max_body_bytes": "10",
    "trusted_proxies": "proxy.internal",
    "root_path": "printhook",
    "retention_days": "0",
}


@pytest.mark.parametrize(("field", "value"), sorted(INVALID.items()))
def test_every_invalid_setting_is_named_once_without_pydantic_prefixes(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    assert field in Settings.model_fields
    (problem,) = problems(monkeypatch, **{field: value})
    variable = f"PRINTHOOK_{field.upper()}"
    assert problem.startswith(f"{variable}: ")
    assert problem.count(variable) == 1
    for noise in ("Value error", "configuration:", "validation error", "errors.pydantic.dev"):
        assert noise not in problem
    # Credentials in a URL are never echoed.
    assert "hunter2" not in problem


def test_several_invalid_settings_give_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(monkeypatch, reconcile_interval="5 min", trusted_proxies="x", log_level="x")
    assert sorted(p.split(":")[0] for p in found) == [
        "PRINTHOOK_LOG_LEVEL",
        "PRINTHOOK_RECONCILE_INTERVAL",
        "PRINTHOOK_TRUSTED_PROXIES",
    ]
    assert all("\n" not in p for p in found)


def test_production_names_the_missing_keys_once(monkeypatch: pytest.MonkeyPatch) -> None:
    (problem,) = problems(monkeypatch, environment="production")
    assert problem.startswith("PRINTHOOK_API_KEYS must be set with PRINTHOOK_ENVIRONMENT=")
    assert problem.count("PRINTHOOK_API_KEYS") == 1


def test_a_short_secret_in_production_is_named_but_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (problem,) = problems(
        monkeypatch,
        environment="production",
        api_keys="a-long-enough-shop-key-0001",
        printmotor_webhook_secrets="tiny-key",
    )
    assert problem.startswith("PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS holds a placeholder")
    assert "tiny-key" not in problem


def summary_lines(settings: Settings, caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    with caplog.at_level(logging.INFO, logger="printhook.startup"):
        log_configuration_summary(settings, "serve")
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records]


def test_start_up_summary_counts_what_is_configured_without_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        "postgresql+asyncpg://printhook:db-password-0001@db/printhook",
        api_keys="shop-key-number-one-0001,shop-key-number-two-0002",
        printess_service_token="printess-service-token-0001",
        printmotor_webhook_secrets="webhook-key-current-0001",
        printmotor_username="printhook",
        printmotor_password="printmotor-password-0001",
        printmotor_service="printhook-service",
    )
    lines = summary_lines(settings, caplog)
    summary = lines[0]
    assert summary["event"] == "config.summary"
    assert summary["level"] == "info"
    assert {
        key: summary[key]
        for key in (
            "database",
            "api_keys",
            "printess_service_token",
            "printess_verify_callbacks",
            "printmotor_webhook_keys",
            "printmotor_order_credentials",
        )
    } == {
        "database": "postgresql",
        "api_keys": 2,
        "printess_service_token": True,
        "printess_verify_callbacks": True,
        "printmotor_webhook_keys": 1,
        "printmotor_order_credentials": "complete",
    }
    # Nothing is missing: no warnings.
    assert [line["event"] for line in lines] == ["config.summary"]
    text = json.dumps(lines)
    for secret in ("shop-key-number-one", "printess-service-token", "webhook-key-current"):
        assert secret not in text
    assert "db-password" not in text
    assert "printmotor-password" not in text


def test_start_up_warns_for_each_piece_that_makes_an_endpoint_refuse_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///printhook.db", api_keys="", printmotor_username="printhook"
    )
    lines = summary_lines(settings, caplog)
    assert lines[0]["database"] == "sqlite"
    assert lines[0]["api_keys"] == 0
    assert lines[0]["printmotor_order_credentials"] == "partial"
    warnings = {line["variable"]: line["consequence"] for line in lines[1:]}
    assert all(line["level"] == "warning" for line in lines[1:])
    assert warnings["PRINTHOOK_API_KEYS"] == "every shop call to /v1/... is answered 401"
    assert warnings["PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS"] == (
        "every Printmotor webhook is answered 401"
    )
    assert "POST /v1/printess/jobs is answered 503" in warnings["PRINTHOOK_PRINTESS_SERVICE_TOKEN"]
    credentials = warnings["PRINTHOOK_PRINTMOTOR_PASSWORD, PRINTHOOK_PRINTMOTOR_SERVICE"]
    assert "POST /v1/printmotor/orders is answered 503" in credentials
    assert "PRINTHOOK_PRINTMOTOR_USERNAME set without them" in credentials


def test_start_up_warns_about_a_misspelt_variable() -> None:
    settings = make_settings("sqlite+aiosqlite:///printhook.db")
    environ = {"PRINTHOOK_API_KEY": "x", "PRINTHOOK_API_KEYS": "y", "PRINTHOOK_LOG_LEVEL": "INFO"}
    found = {w.variable: w.consequence for w in configuration_warnings(settings, environ)}
    assert found["PRINTHOOK_API_KEY"] == "is not a printhook setting and is ignored (a typo?)"
    assert "PRINTHOOK_LOG_LEVEL" not in found


async def test_placing_an_order_without_credentials_says_not_configured_and_what_to_set(
    database_url: str,
) -> None:
    settings = make_settings(database_url, printmotor_api_url="http://127.0.0.1:9")
    async with running_app(settings) as (_, client):
        answer = await client.post(
            "/v1/printmotor/orders",
            json=order_request("shop-order-77"),
            headers={**AUTH, "Idempotency-Key": "k-77"},
        )
        # Once configured (here: still not), the same order may be sent again.
        again = await client.post(
            "/v1/printmotor/orders",
            json=order_request("shop-order-77"),
            headers={**AUTH, "Idempotency-Key": "k-77"},
        )
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:printhook:problem:printmotor-not-configured"
    assert problem["title"] == "Printmotor order credentials are not configured"
    for variable in ("USERNAME", "PASSWORD", "SERVICE"):
        assert f"PRINTHOOK_PRINTMOTOR_{variable}" in problem["detail"]
    assert "restart" in problem["detail"]
    assert again.json()["type"] == problem["type"]
    # Nothing was placed and no claim is left behind.
    async with db_session(database_url) as session:
        assert await get_placement(session, "shop-order-77") is None
