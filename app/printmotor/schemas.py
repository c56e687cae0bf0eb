"""The shop API's JSON shapes for Printmotor orders (camelCase, like Printmotor's own API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.hygiene import TEXT_PATTERN, JsonValue, Text, identifier
from app.printmotor.transition import STATUSES, is_done


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class OrderMeta(BaseModel):
    model_config = ConfigDict(
        extra="allow", strict=True, json_schema_extra={"propertyNames": {"pattern": TEXT_PATTERN}}
    )
    __pydantic_extra__: dict[Text, JsonValue] = Field(init=False)

    reference: Annotated[str, identifier(255)] = Field(
        description="The shop's reference: an order is placed at most once per reference."
    )


# Shaped like Printmotor's own order request (see the vendor's examples).
ORDER_EXAMPLE: dict[str, Any] = {
    "meta": {"reference": "order-1001"},
    "address": {
        "name": "Kari Nordmann",
        "address": "Mannerheimintie 18",
        "postalCode": "00100",
        "postalArea": "Helsinki",
        "countryIso2": "FI",
    },
    "postalClass": "EXPRESS",
    "products": [{"amount": 1, "product": "matt-poster", "size": "30x40"}],
}


class OrderRequest(BaseModel):
    """A Printmotor order, passed through as sent. Only `meta.reference` is required by
    printhook: it is what links Printmotor's webhooks back to the placement."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={
            "examples": [ORDER_EXAMPLE],
            "propertyNames": {"pattern": TEXT_PATTERN},
        },
    )
    __pydantic_extra__: dict[Text, JsonValue] = Field(init=False)

    meta: OrderMeta


class HistoryEntry(ApiModel):
    id: int
    type: str
    created_at: datetime
    data: dict[str, Any]


class PollInfo(ApiModel):
    attempts: int
    last_polled_at: datetime | None
    next_poll_at: datetime | None


class OrderOut(ApiModel):
    """A print order as the shop API shows it.

    `is_final`: Printmotor has finished with the order (delivered, cancelled, or a read-back
    showed a processingStatus other than RECEIVED / IN_PRODUCTION: then `done_at` and the raw
    `done_processing_status` say when and which). `*_raw`: Printmotor's timestamps exactly as
    sent (they carry no zone; the parsed ones are read in PRINTHOOK_PRINTMOTOR_TIMEZONE).
    """

    order_number: str
    reference: str | None
    status: Annotated[str, Field(json_schema_extra={"enum": list(STATUSES)})]
    is_final: bool
    done_at: datetime | None
    done_processing_status: str | None
    processing_status: str | None
    description: str | None
    last_event_type: str | None
    tracking_code: str | None
    tracking_links: list[str]
    postal_class: str | None
    delivery_time: datetime | None
    estimated_delivery_time: datetime | None
    delivery_time_raw: str | None
    estimated_delivery_time_raw: str | None
    created_at: datetime
    updated_at: datetime
    poll: PollInfo
    history: list[HistoryEntry] | None = None

    @classmethod
    def of(cls, row: Mapping[Any, Any], history: list[HistoryEntry] | None = None) -> OrderOut:
        return cls(
            order_number=row["order_number"],
            reference=row["reference"],
            status=row["status"],
            is_final=is_done(row),
            done_at=row["done_at"],
            done_processing_status=row["done_processing_status"],
            processing_status=row["processing_status"],
            description=row["processing_status_description"],
            last_event_type=row["last_event_type"],
            tracking_code=row["tracking_code"],
            tracking_links=list(row["tracking_links"] or []),
            postal_class=row["postal_class"],
            delivery_time=row["delivery_time"],
            estimated_delivery_time=row["estimated_delivery_time"],
            delivery_time_raw=row["delivery_time_raw"],
            estimated_delivery_time_raw=row["estimated_delivery_time_raw"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            poll=PollInfo(
                attempts=row["poll_attempts"],
                last_polled_at=row["last_polled_at"],
                next_poll_at=row["next_poll_at"],
            ),
            history=history,
        )


class OrderPage(ApiModel):
    items: list[OrderOut]
    next_cursor: str | None
