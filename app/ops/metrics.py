"""Prometheus metrics. Every metric printhook exposes is declared here."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "printhook_http_requests_total",
    "HTTP requests answered, by route template and status code",
    ["method", "route", "status"],
)
VENDOR_ACK_SECONDS = Histogram(
    "printhook_vendor_ack_seconds",
    "Time to acknowledge a vendor callback or webhook",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INBOUND_EVENTS = Counter(
    "printhook_inbound_events_total",
    "Vendor requests by source and how the ack path answered "
    "(accepted, duplicate, rejected, unauthorized, too_large, timeout, unavailable)",
    ["source", "outcome"],
)
INBOUND_APPLIED = Counter(
    "printhook_inbound_applied_total",
    "Inbound events handled by the applier, by source and resulting state "
    "(applied, unchanged, rejected, failed; pending = will be retried)",
    ["source", "state"],
)
APPLY_LAG_SECONDS = Histogram(
    "printhook_inbound_apply_lag_seconds",
    "Time from acknowledging an inbound event to applying it",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
INBOUND_PENDING = Gauge(
    "printhook_inbound_pending",
    "Inbound events acknowledged and not applied yet",
    ["source"],
)
INBOUND_OLDEST_PENDING_AGE = Gauge(
    "printhook_inbound_oldest_pending_age_seconds",
    "Age of the oldest inbound event not applied yet",
    ["source"],
)
INBOUND_PARKED = Gauge(
    "printhook_inbound_failed",
    "Inbound events parked as failed (kept for replay)",
    ["source"],
)
RECONCILER_POLLS = Counter(
    "printhook_reconciler_polls_total",
    "Vendor status reads by the reconcilers, by outcome "
    "(changed, unchanged, throttled, error, abandoned)",
    ["vendor", "outcome"],
)
VENDOR_CALLS = Counter(
    "printhook_vendor_calls_total",
    "HTTP calls to vendor APIs by operation and result (status code, or 'error')",
    ["vendor", "operation", "result"],
)
NON_FINAL = Gauge(
    "printhook_non_final",
    "Jobs and orders without a final status",
    ["kind"],
)
OLDEST_NON_FINAL_AGE = Gauge(
    "printhook_oldest_non_final_age_seconds",
    "Age of the oldest job or order without a final status",
    ["kind"],
)
DELIVERY_ATTEMPTS = Counter(
    "printhook_delivery_attempts_total",
    "Outbound webhook attempts to the shop by outcome "
    "(delivered, throttled, gone, redirect, http_error, timeout, network_error)",
    ["outcome"],
)
PENDING_DELIVERIES = Gauge(
    "printhook_pending_deliveries",
    "Outbound webhooks not yet delivered nor given up",
)
OLDEST_PENDING_DELIVERY_AGE = Gauge(
    "printhook_oldest_pending_delivery_age_seconds",
    "Age of the oldest outbound webhook not yet delivered nor given up",
)
DELIVERIES_DISABLED = Gauge(
    "printhook_deliveries_disabled",
    "1 while outbound delivery is disabled (the shop answered 410 Gone), else 0",
)
