"""Printess payloads (callbacks, status/get answers) and the shop API's JSON shapes.

Vendor payloads are parsed leniently: unknown fields are ignored here (the raw bytes are kept
in the inbound log), and both callback shapes are understood.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.hygiene import TEXT_PATTERN, JsonInt32, JsonValue, Text, identifier
from app.printess.models import PrintessJob


class PayloadError(ValueError):
    """A vendor payload that cannot be understood or stored: not JSON, no usable jobId,
    identifiers too long for their columns, NUL or lone surrogates, dates out of range."""


# Column sizes (see models.py): longer identifiers are refused, never truncated.
JOB_ID_MAX = 128
ORDER_ID_MAX = 128
REFERENCE_MAX = 255
TEMPLATE_NAME_MAX = 255
# Printess payloads are a few levels deep; anything deeper is not a Printess payload.
MAX_DEPTH = 32
# Free text that is cleaned (NUL removed, lone surrogates replaced) instead of refused.
FREE_TEXT_FIELDS = frozenset({"errorDetails", "failureDetails"})
DATE_FIELDS = ("enqueuedOn", "processingOn", "finishedOn", "failedOn")


@dataclass(frozen=True)
class JobStatus:
    """What Printess says about a job, from a callback or from status/get."""

    job_id: str
    is_final: bool
    is_success: bool
    error_text: str | None = None
    documents: dict[str, str] = field(default_factory=dict)
    pictures: list[dict[str, Any]] = field(default_factory=list)
    meta: str | None = None
    order_id: str | None = None
    template_name: str | None = None
    external_order_id: str | None = None
    finished_at: datetime | None = None
    # The raw `result` object (documents, file names, zip, form fields, ...), as sent.
    result: dict[str, Any] | None = None
    # status/get's answer for a job Printess no longer knows: not final, not a success,
    # never enqueued.
    is_unknown_job: bool = False


def has_bad_characters(text: str) -> bool:
    """NUL (PostgreSQL text and JSONB cannot hold it) or a lone surrogate (not UTF-8)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean_text(text: str) -> str:
    """Free text made storable: NUL removed, lone surrogates replaced."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def check_storable(payload: object, *, free_text: frozenset[str] = frozenset()) -> None:
    """Raise PayloadError unless every string (keys included) is storable, every number is
    finite and nesting stays within MAX_DEPTH. The characters of top-level `free_text`
    fields are not checked (their text is cleaned instead). Iterative: no input can exhaust
    the stack."""
    stack: list[tuple[object, int, bool]] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            if not isinstance(key, str) or has_bad_characters(key):
                raise PayloadError("a field name contains NUL or invalid Unicode")
            stack.append((value, 1, key not in free_text))
    else:
        stack.append((payload, 0, True))
    while stack:
        value, depth, strict = stack.pop()
        if depth > MAX_DEPTH:
            raise PayloadError(f"JSON is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            if strict and has_bad_characters(value):
                raise PayloadError("a string contains NUL or invalid Unicode")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise PayloadError("a number is not finite")
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or (strict and has_bad_characters(key)):
                    raise PayloadError("a field name contains NUL or invalid Unicode")
                stack.append((item, depth + 1, strict))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, strict) for item in value)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _free_text(value: object) -> str | None:
    text = _text(value)
    return clean_text(text) if text else None


def _identifier(payload: dict[str, Any], name: str, limit: int) -> str | None:
    value = _text(payload.get(name))
    if value is not None and len(value) > limit:
        raise PayloadError(f"{name} is longer than {limit} characters")
    return value or None


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str) and v}


def _pictures(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    pictures = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("u"), str) or not item["u"]:
            continue
        index = item.get("i")
        pictures.append(
            {
                "document": item.get("d") if isinstance(item.get("d"), str) else None,
                "url": item["u"],
                "index": index if isinstance(index, int) and abs(index) < 2**31 else 0,
            }
        )
    return pictures


def parse_vendor_time(value: object) -> datetime | None:
    """Printess dates are strings; read ISO 8601 and assume UTC when no zone is given.
    An unreadable string is ignored; a date that cannot be represented in UTC is refused."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise PayloadError(f"date {value[:40]!r} is out of range") from None


def _is_final(payload: dict[str, Any], has_output: bool) -> bool:
    """status/get says `isFinalStatus`. A callback-shaped body is final only when it says it
    failed or carries documents or pictures; anything else is progress."""
    if isinstance(payload.get("isFinalStatus"), bool):
        return bool(payload["isFinalStatus"])
    return payload.get("isFailure") is True or has_output


def parse_status(payload: object) -> JobStatus:
    """Read a callback body (`isFailure`/`failureDetails`) or a status/get answer
    (`isSuccess`/`errorDetails`/`isFinalStatus`). Raises PayloadError, never anything else,
    for anything that cannot be understood or stored."""
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    check_storable(payload, free_text=FREE_TEXT_FIELDS)
    job_id = payload.get("jobId")
    if not isinstance(job_id, str) or not job_id.strip():
        raise PayloadError("jobId is missing or empty")
    job_id = job_id.strip()
    if len(job_id) > JOB_ID_MAX:
        raise PayloadError(f"jobId is longer than {JOB_ID_MAX} characters")
    raw_result = payload.get("result")
    result: dict[str, Any] = raw_result if isinstance(raw_result, dict) else {}
    # Only `r` holds document URLs; `d` maps the same names to output file names.
    documents = _string_map(result.get("r"))
    pictures = _pictures(result.get("p"))
    is_final = _is_final(payload, bool(documents or pictures))
    error_text = _free_text(payload.get("failureDetails")) or _free_text(
        payload.get("errorDetails")
    )
    if isinstance(payload.get("isFailure"), bool):
        is_success = not payload["isFailure"]
    elif isinstance(payload.get("isSuccess"), bool):
        is_success = payload["isSuccess"]
    else:
        is_success = not error_text
    meta = payload.get("meta") if isinstance(payload.get("meta"), str) else None
    if meta is None and isinstance(result.get("meta"), str):
        meta = result["meta"]
    dates = {name: parse_vendor_time(payload.get(name)) for name in DATE_FIELDS}
    return JobStatus(
        job_id=job_id,
        is_final=is_final,
        is_success=is_success,
        error_text=error_text if not is_success else None,
        documents=documents,
        pictures=pictures,
        meta=meta,
        order_id=_identifier(payload, "orderId", ORDER_ID_MAX),
        template_name=_identifier(payload, "templateName", TEMPLATE_NAME_MAX),
        external_order_id=_identifier(payload, "externalOrderId", REFERENCE_MAX),
        finished_at=dates["finishedOn"] if is_success else dates["failedOn"],
        result=raw_result if isinstance(raw_result, dict) else None,
        is_unknown_job=(
            payload.get("isFinalStatus") is False
            and payload.get("isSuccess") is False
            and payload.get("enqueuedOn") is None
        ),
    )


def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"{name} is not a JSON number printhook can store")


def parse_status_bytes(body: bytes) -> JobStatus:
    """`parse_status` for raw bytes; refuses non-UTF-8, non-JSON and too deeply nested JSON."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise PayloadError(f"JSON is nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, PayloadError):
            raise
        raise PayloadError("body is not JSON") from None
    return parse_status(payload)


# --- Shop API -------------------------------------------------------------------------------


JOB_STATUSES = ("pending", "succeeded", "failed")
FINALIZED_BY = ("callback", "reconcile", "replay")


class TrackJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reference: Annotated[str, identifier(255)] | None = None


PRODUCE_EXAMPLE: dict[str, Any] = {
    "templateName": "st:4f2a9c1e-poster-a3",
    "origin": "shop",
    "externalOrderId": "order-1001",
    "reference": "order-1001",
    "meta": '{"lineItem":1}',
}


class ProduceJobRequest(BaseModel):
    """Printess's `ProduceJobDto` as the shop sends it to printhook, plus `reference`.

    `templateName` and `origin` are required (as by Printess); every other field of
    `ProduceJobDto` is optional, and fields printhook does not know are passed on to Printess
    as sent. `callbackUrl` is always set by printhook.
    """

    # Strict: a value of the wrong JSON type is refused, never converted (0 is not false).
    model_config = ConfigDict(
        extra="allow",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={
            "examples": [PRODUCE_EXAMPLE],
            "propertyNames": {"pattern": TEXT_PATTERN},
        },
    )
    __pydantic_extra__: dict[Text, JsonValue] = Field(init=False)

    template_name: Annotated[str, identifier(255)] = Field(
        description="The template (or save token) to produce."
    )
    origin: Annotated[str, Field(min_length=1), Field(pattern=TEXT_PATTERN)] = Field(
        description="Free text Printess keeps with the order."
    )
    reference: Annotated[str, identifier(255)] | None = Field(
        default=None,
        description="The shop's own reference (not sent to Printess); defaults to externalOrderId.",
    )
    external_order_id: Text | None = None
    content_template_name: Text | None = None
    exchange_template_name: Text | None = None
    use_published_version: bool | None = None
    distributor_name: Text | None = None
    meta: Text | None = Field(default=None, description="Echoed in the callback.")
    order_meta_data: Text | None = None
    output_files: list[dict[Text, JsonValue]] | None = None
    product_type: Text | None = None
    vdp: dict[Text, JsonValue] | None = None
    output_settings: dict[Text, JsonValue] | None = None
    merge_templates: list[dict[Text, JsonValue]] | None = None
    failure_repeats: JsonInt32 | None = None
    copies: JsonInt32 | None = None
    output_type: Text | None = None
    auto_merge: bool | None = None
    atomyx_profile: Text | None = None
    combine_pdfs_into_one: bool | None = None
    print_settings_template: Text | None = None

    def produce_body(self) -> dict[str, Any]:
        """The JSON object as the shop sent it (extra fields included)."""
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return body


class ApiModel(BaseModel):
    """Shop API JSON is camelCase (like Printess's own API); Python names stay snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Picture(ApiModel):
    document: str | None
    url: str
    index: int


class PollInfo(ApiModel):
    attempts: int
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    abandoned: bool
    abandoned_at: datetime | None


class JobOut(ApiModel):
    """A render job as the shop API shows it."""

    job_id: str
    status: Annotated[str, Field(json_schema_extra={"enum": list(JOB_STATUSES)})]
    is_final: bool
    reference: str | None
    printess_order_id: str | None
    template_name: str | None
    documents: dict[str, str]
    pictures: list[Picture]
    error: str | None
    meta: str | None
    # The raw `result` of the answer that finalised the job (`r`, `d`, `p`, `zip`, `ff`, ...).
    result: dict[str, Any] | None
    # status/get no longer knows the job: flagged, and no longer polled.
    vanished: bool
    vanished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    finalized_by: Annotated[str, Field(json_schema_extra={"enum": list(FINALIZED_BY)})] | None
    poll: PollInfo

    @classmethod
    def of(cls, job: PrintessJob) -> JobOut:
        return cls(
            job_id=job.job_id,
            status=job.status,
            is_final=job.is_final,
            reference=job.reference,
            printess_order_id=job.printess_order_id,
            template_name=job.template_name,
            documents=dict(job.documents or {}),
            pictures=[Picture(**p) for p in job.pictures or []],
            error=job.error_text,
            meta=job.meta,
            result=job.result,
            vanished=job.vanished_at is not None,
            vanished_at=job.vanished_at,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            finalized_by=job.finalized_by,
            poll=PollInfo(
                attempts=job.poll_attempts,
                last_polled_at=job.last_polled_at,
                next_poll_at=job.next_poll_at,
                abandoned=job.reconcile_abandoned_at is not None,
                abandoned_at=job.reconcile_abandoned_at,
            ),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def job_event_data(job: PrintessJob) -> dict[str, Any]:
    """The job as the change feed carries it: the same shape as the API."""
    return JobOut.of(job).to_json()


class JobPage(ApiModel):
    items: list[JobOut]
    next_cursor: str | None
