"""All of printhook's configuration: one Settings class read from `PRINTHOOK_*` variables."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./printhook.db"

# Values that mean "nobody set this": refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "example", "xxx"})


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: object) -> object:
    """Accept seconds (`3600`), a unit suffix (`90s`, `15m`, `24h`, `7d`) or ISO 8601."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return timedelta(seconds=float(text))
        except ValueError:
            pass
        if text[-1:] in _UNITS:
            try:
                return timedelta(seconds=float(text[:-1]) * _UNITS[text[-1]])
            except ValueError:
                pass
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

    environment: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=10, ge=1, le=200)
    api_keys: SecretList = Field(default_factory=list)
    public_base_url: str = "http://localhost:8000"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Printess
    printess_api_url: str = "https://api.printess.com"
    printess_service_token: SecretStr | None = None
    printess_callback_secret: SecretStr | None = None
    printess_verify_callbacks: bool | None = None
    printess_status_rate: float = Field(default=1.0, gt=0, le=1000)
    # The first status/get of a freshly submitted job waits for the callback's chance.
    printess_first_poll_after: timedelta = timedelta(minutes=10)
    # After this many "unknown job" answers from status/get a job is flagged vanished.
    printess_vanished_after: int = Field(default=3, ge=1, le=100)

    # Printmotor
    printmotor_api_url: str = "https://api.printmotor.io/api/v1"
    printmotor_username: str | None = None
    printmotor_password: SecretStr | None = None
    printmotor_service: str | None = None
    printmotor_webhook_secrets: SecretList = Field(default_factory=list)
    printmotor_stale_after: timedelta = timedelta(hours=24)
    printmotor_read_rate: float = Field(default=1.0, gt=0, le=1000)
    # Printmotor timestamps carry no zone; they are read in this one (an assumption).
    printmotor_timezone: str = "UTC"

    # Inbound events: the ack path and the applier
    body_timeout: timedelta = timedelta(seconds=10)
    apply_batch_size: int = Field(default=100, ge=1, le=5000)
    apply_max_attempts: int = Field(default=5, ge=1, le=100)

    # Outbound webhooks to the shop (Standard Webhooks)
    notify_url: str | None = None
    notify_secrets: SecretList = Field(default_factory=list)
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
        ]
    )
    notify_timeout: timedelta = timedelta(seconds=15)

    # Background work
    run_workers: bool = True
    reconcile_interval: float = Field(default=300.0, gt=0)
    reconcile_max_age: timedelta = timedelta(days=7)

    # HTTP edge
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    trusted_proxies: CommaList = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    root_path: str = ""
    retention_days: int = Field(default=30, ge=1)

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

    @field_validator(
        "printmotor_stale_after",
        "reconcile_max_age",
        "printess_first_poll_after",
        "body_timeout",
        "notify_timeout",
        mode="before",
    )
    @classmethod
    def _durations(cls, value: object) -> object:
        return _duration(value)

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
                        f"{name} holds a placeholder or a value shorter than 16 characters; "
                        "set a real random secret"
                    )
        if not self.api_keys:
            raise ValueError("PRINTHOOK_API_KEYS must be set outside development")
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
    """Settings could not be loaded; the message names the variables at fault."""


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
            name = "PRINTHOOK_" + loc[0].upper() if loc else "configuration"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
