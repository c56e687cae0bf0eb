"""All of printhook's configuration: one Settings class read from `PRINTHOOK_*` variables."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.configvalues import DURATION_FORMS, parse_duration, proxy_entry

__all__ = ["DURATION_FORMS", "ConfigurationError", "Settings", "load_settings", "parse_duration"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./printhook.db"

# Values that mean "nobody set this": refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "example", "xxx"})


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]


class Settings(BaseSettings):
    """printhook settings. Every field is read from `PRINTHOOK_<FIELD NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="PRINTHOOK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # Each description is the reference documentation: docs/CONFIGURATION.md and .env.example
    # are generated from this class (`python -m app.configdoc`).
    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses placeholder or short (< 16 characters) secrets and "
        "requires `PRINTHOOK_API_KEYS`",
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="`sqlite+aiosqlite:///path` (one process; the folder must exist) or "
        "`postgresql+asyncpg://user:password@host:5432/db` (any number of replicas)",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="PostgreSQL connections per process, plus as many overflow",
    )
    api_keys: SecretList = Field(
        default_factory=list,
        description="bearer keys for the shop and operator API (`/v1/...`), several during a "
        "rotation; none: every `/v1` call is answered 401",
    )
    public_base_url: str = Field(
        default="http://localhost:8000",
        description="how vendors reach printhook, including any path prefix; Printess callback "
        "URLs are built from it",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="level of the JSON log lines written to stderr"
    )

    # Printess
    printess_api_url: str = Field(
        default="https://api.printess.com", description="the Printess backend API"
    )
    printess_service_token: SecretStr | None = Field(
        default=None,
        description="Printess service token, for produce and status/get; none: jobs cannot be "
        "submitted through printhook and the reconciler is off",
    )
    printess_callback_secret: SecretStr | None = Field(
        default=None,
        description="shared secret in the callback URL of jobs the shop submits itself: "
        "`{PUBLIC_BASE_URL}/callbacks/printess/{secret}`",
    )
    printess_verify_callbacks: bool | None = Field(
        default=None,
        description="re-read every callback's job from Printess instead of trusting the body "
        "(default: on when a service token is set)",
    )
    printess_status_rate: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="status/get calls per second, shared by all replicas",
    )
    printess_first_poll_after: timedelta = Field(
        default=timedelta(minutes=10),
        description="the first status/get of a new job waits this long, for its callback's chance",
    )
    printess_vanished_after: int = Field(
        default=3,
        ge=1,
        le=100,
        description='"unknown job" answers from status/get before a '
        "job is flagged vanished and no longer polled",
    )

    # Printmotor
    printmotor_api_url: str = Field(
        default="https://api.printmotor.io/api/v1",
        description="the Printmotor order API (test: `https://test.printmotor.io/api/v1`)",
    )
    printmotor_username: str | None = Field(
        default=None, description="HTTP Basic user for the order API (placing and reading back)"
    )
    printmotor_password: SecretStr | None = Field(
        default=None, description="HTTP Basic password for the order API"
    )
    printmotor_service: str | None = Field(
        default=None, description="value of the `X-Printmotor-Service` header"
    )
    printmotor_webhook_secrets: SecretList = Field(
        default_factory=list,
        description="HMAC keys Printmotor signs webhooks with, several during a rotation; "
        "none: every webhook is answered 401",
    )
    printmotor_stale_after: timedelta = Field(
        default=timedelta(hours=24),
        description="read back an order that is not done after this long without news",
    )
    printmotor_read_rate: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="order read-backs per second, shared by all replicas",
    )
    # Printmotor timestamps carry no zone; they are read in this one (an assumption).
    printmotor_timezone: str = Field(
        default="UTC",
        description="time zone Printmotor's zone-less timestamps are read in (an IANA name)",
    )

    # Inbound events: the ack path and the applier
    body_timeout: timedelta = Field(
        default=timedelta(seconds=10),
        description="a vendor request body slower than this is answered 408",
    )
    apply_batch_size: int = Field(
        default=100, ge=1, le=5000, description="inbound events one applier claim takes at a time"
    )
    apply_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="unexpected failures before an inbound event is "
        "parked as failed (kept for replay)",
    )

    # Outbound webhooks to the shop (Standard Webhooks)
    notify_url: str | None = Field(
        default=None,
        description="every change-feed event is POSTed here with Standard Webhooks headers "
        "(none: no delivery)",
    )
    notify_secrets: SecretList = Field(
        default_factory=list,
        description="`whsec_...` signing secrets; every one signs during a rotation",
    )
    notify_schedule: CommaList = Field(
        default_factory=lambda: [
            "5s",
            "30s",
            "2m",
            "10m",
            "30m",
            "1h",
            "2h",
            "4h",
            "8h",
            "12h",
            "24h",
            "24h",
        ],
        description="waits between delivery attempts (about three days in all)",
    )
    notify_timeout: timedelta = Field(
        default=timedelta(seconds=15), description="one delivery attempt's timeout"
    )

    # Background work
    run_workers: bool = Field(
        default=True,
        description="run the background work inside the web process (`false`: run "
        "`printhook worker` separately)",
    )
    lease_grace: timedelta = Field(
        default=timedelta(seconds=60),
        description="how long a replica's claim on background work outlasts the work's "
        "expected time; work claimed by a crashed replica is taken over this much later",
    )
    # Seconds (a float) for the reconcilers; written like every other duration.
    reconcile_interval: float = Field(
        default=300.0, gt=0, description="time between reconciler passes"
    )
    reconcile_max_age: timedelta = Field(
        default=timedelta(days=7),
        description="jobs and orders older than this are no longer polled, and flagged",
    )

    # HTTP edge
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="larger request bodies are refused with 413 (keep nginx's "
        "`client_max_body_size` equal)",
    )
    trusted_proxies: CommaList = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="IPs or CIDRs of proxies whose `X-Forwarded-For`/`-Proto` are believed "
        "(docker-compose.yml adds Docker's `172.16.0.0/12`)",
    )
    root_path: str = Field(
        default="", description="path prefix when served under one, e.g. `/printhook`"
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        description="raw inbound bodies older than this many days are purged (the rows stay)",
    )

    @field_validator(
        "api_keys",
        "printmotor_webhook_secrets",
        "trusted_proxies",
        "notify_secrets",
        "notify_schedule",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _ips_and_networks(cls, value: list[str]) -> list[str]:
        return [proxy_entry(entry) for entry in value]

    @field_validator("notify_schedule")
    @classmethod
    def _schedule_of_durations(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one wait, e.g. 5s,30s,2m")
        for entry in value:
            parse_duration(entry)
        return value

    @field_validator(
        "printmotor_stale_after",
        "reconcile_max_age",
        "printess_first_poll_after",
        "body_timeout",
        "notify_timeout",
        "lease_grace",
        mode="before",
    )
    @classmethod
    def _durations(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("reconcile_interval", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> float:
        return parse_duration(value).total_seconds()

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("public_base_url", "printess_api_url", "printmotor_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("printmotor_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        # Checked at startup, so a typo fails loudly instead of shifting every timestamp.
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (KeyError, ValueError, OSError):
                raise ValueError(
                    f"{value!r} is not a time zone name known here (e.g. UTC, Europe/Helsinki)"
                ) from None
        return value

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> Settings:
        if self.environment == "development":
            return self
        named: dict[str, list[SecretStr]] = {
            "PRINTHOOK_API_KEYS": list(self.api_keys),
            "PRINTHOOK_PRINTMOTOR_WEBHOOK_SECRETS": list(self.printmotor_webhook_secrets),
        }
        for name, single in (
            ("PRINTHOOK_PRINTESS_SERVICE_TOKEN", self.printess_service_token),
            ("PRINTHOOK_PRINTESS_CALLBACK_SECRET", self.printess_callback_secret),
            ("PRINTHOOK_PRINTMOTOR_PASSWORD", self.printmotor_password),
        ):
            if single is not None:
                named[name] = [single]
        for name, values in named.items():
            for secret in values:
                raw = secret.get_secret_value()
                if raw.strip().lower() in PLACEHOLDER_SECRETS or len(raw) < 16:
                    raise ValueError(
                        f"{name} holds a placeholder or a value shorter than 16 characters, "
                        "refused with PRINTHOOK_ENVIRONMENT=production; set a real random secret"
                    )
        if not self.api_keys:
            raise ValueError(
                "PRINTHOOK_API_KEYS must be set with PRINTHOOK_ENVIRONMENT=production "
                "(comma-separated bearer keys for the shop API)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def verify_printess_callbacks(self) -> bool:
        """Callbacks are only triggers when we can re-read the job from Printess."""
        if self.printess_verify_callbacks is None:
            return self.printess_service_token is not None
        return self.printess_verify_callbacks


class ConfigurationError(Exception):
    """Settings could not be loaded: one line per problem, each naming its variable once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Settings whose values may hold credentials: never echoed in an error.
_SECRET_FIELDS = frozenset({"database_url", "notify_url"})


def _is_secret_field(name: str) -> bool:
    field = Settings.model_fields.get(name)
    return name in _SECRET_FIELDS or (field is not None and "SecretStr" in repr(field.annotation))


def _problem(error: Any) -> str:
    """One readable line for one pydantic error: `PRINTHOOK_X: what is wrong`."""
    message = str(error["msg"])
    # pydantic prefixes the messages of our own validators; the variable name is prefix enough.
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
    if not loc:
        return message  # a check across settings names its variables itself
    field = loc[0]
    if error["type"] != "value_error" and not _is_secret_field(field):
        given = error.get("input")
        if isinstance(given, str | int | float) and not isinstance(given, bool):
            message += f" (got {str(given)[:80]!r})"
    return f"PRINTHOOK_{field.upper()}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into readable lines."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError([_problem(error) for error in exc.errors()]) from None
