"""Webhook metrics: attempts and finished deliveries by outcome, attempt latency, queue depth.

Deliveries are off the request path, so prometheus-client's own Counter and Histogram serve (their
per-update lock costs nothing here). Every metric takes the gateway's registry (tests build their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WebhookMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth: Callable[[], int] = lambda: 0
        self.attempts = Counter("testmode_proxy_webhook_attempts", "Webhook delivery attempts by outcome "
                                "(delivered, http_error, redirect, timeout, connect_error, refused, drill_*).",
                                ["outcome"], registry=registry)
        self.deliveries = Counter("testmode_proxy_webhook_deliveries", "Finished webhook deliveries by outcome "
                                  "(delivered, failed).", ["outcome"], registry=registry)
        self.seconds = Histogram("testmode_proxy_webhook_attempt_duration_seconds",
                                 "Webhook attempt latency: lookup, connect, send, the answer's head.",
                                 buckets=_SECONDS, registry=registry)
        registry.register(self)

    def attempt(self, outcome: str, seconds: float) -> None:
        self.attempts.labels(outcome).inc()
        self.seconds.observe(seconds)

    def finished(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self.depth()
        except Exception:  # the store is closed (shutting down): no figure rather than a failed scrape
            return
        yield GaugeMetricFamily("testmode_proxy_webhook_queue_depth",
                                "Webhook deliveries not finished (scheduled, retrying or waiting their turn).",
                                value=depth)
