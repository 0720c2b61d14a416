"""Prometheus metrics: request counts and latencies by route template, plus gauges others register."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUESTS = Counter("chm_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "chm_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RATE_LIMITED = Counter("chm_rate_limited_total", "Requests refused with 429")
SEARCH_SYNCED = Counter("chm_search_synced_total", "Outbox rows applied to the search engine")
SEARCH_FAILED = Counter("chm_search_failed_total", "Outbox rows that failed an attempt")
SEARCH_LAG = Histogram(
    "chm_search_sync_lag_seconds",
    "From the write's commit (outbox row) to the engine's confirmation",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

WEBHOOK_DELIVERIES = Counter(
    "chm_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"]
)  # success | http_error | timeout | connection_error | refused
WEBHOOK_LAG = Gauge(
    "chm_webhook_lag_seconds",
    "Age of the oldest public change not yet delivered, per active subscription",
    ["subscription"],
)
WEBHOOK_LAG_SECONDS = Histogram(
    "chm_webhook_delivery_lag_seconds",
    "From the change-log entry to the receiver's acknowledgement",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
WEBHOOK_SUBSCRIPTIONS = Gauge("chm_webhook_subscriptions", "Webhook subscriptions by status", ["status"])


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
