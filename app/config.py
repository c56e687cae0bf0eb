"""All of printhook's configuration: one Settings class read from `PRINTHOOK_*` variables."""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./printhook.db"

# Values that mean "nobody set this": refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "example", "xxx"})


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
DURATION_FORMS = "seconds (300) or a number with s, m, h or d (300s, 5m, 24h, 7d)"


def parse_duration(value: object) -> timedelta:
    """One duration syntax for every setting: `300`, `300s`, `5m`, `24h`, `7d` or ISO 8601 `P7D`.

    Raises ValueError naming the accepted forms (never a parser's internal wording).
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration: use {DURATION_FORMS}")
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION.fullmatch(text)
        if match:
            return timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        if text.startswith("p"):
            try:
                parsed = _ISO_DURATION.validate_python(text.upper())
            except ValidationError:
                pass
            else:
                if parsed >= timedelta(0):
                    return parsed
    raise ValueError(f"{value!r} is not a duration: use {DURATION_FORMS}")


_ISO_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _proxy_entry(entry: str) -> str:
    """An IP address or a CIDR network, exactly as uvicorn's proxy middleware reads it."""
    try:
        if "/" in entry:
            ipaddress.ip_network(entry)
        else:
            ipaddress.ip_address(entry)
    except ValueError:
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                pass
            else:
                raise ValueError(
                    f"{entry!r} has host bits set; write the network as {network}"
                ) from None
        raise ValueError(
            f"{entry!r} is not an IP address or a CIDR network (e.g. 10.0.0.1, 172.16.0.0/12); "
            "separate entries with commas"
        ) from None
    return entry


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
    # Seconds (a float) for the reconcilers; written like every other duration.
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

    @field_validator("trusted_proxies")
    @classmethod
    def _ips_and_networks(cls, value: list[str]) -> list[str]:
        return [_proxy_entry(entry) for entry in value]

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
