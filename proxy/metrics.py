"""Prometheus metrics, built for the request path.

Every metric takes a registry (tests build a fresh one); label values are bounded: policy names
and route ids come from the policies, reasons from the fixed error codes.

prometheus-client's own Counter/Histogram take a lock and walk the bucket list in Python on every
update (~1 µs each; a request makes a dozen updates). The gateway runs one event loop per process,
so the request path updates plain Python numbers instead (a dict lookup, ``bisect`` in C, an add)
and a :class:`~prometheus_client.registry.Collector` turns them into metric families only when
``/metrics`` is scraped. Exposition is identical to prometheus-client's (``_total``, ``_bucket``,
``_sum``, ``_count``).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_STAGE = (0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1)


class _Counter:
    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, value in self.values.items():
            family.add_metric(list(labels), value)
        return family


class _Histogram:
    def __init__(self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, bounds
        # per label set: [count in each bucket (last is +Inf)..., sum]
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], amount: float) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, amount)] += 1
        row[-1] += amount

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, row in self.values.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip([*map(str, self.bounds), "+Inf"], row[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(labels), buckets, row[-1])
        return family


class _Collector(Collector):
    def __init__(
        self, metrics: Iterable[_Counter | _Histogram], gauges: Callable[[], Iterator[Metric]],
        before: Callable[[], None],
    ) -> None:
        self.metrics = tuple(metrics)
        self.gauges = gauges
        self.before = before

    def collect(self) -> Iterator[Metric]:
        self.before()
        for metric in self.metrics:
            yield metric.family()
        yield from self.gauges()


class Metrics:
    """The gateway's metrics. The in-flight gauge asks ``in_flight`` (set by the observe stage) at scrape time;
    ``before_collect`` runs first on every scrape (the :class:`proxy.ledger.Ledger` accounts its pending requests)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.in_flight: Callable[[], int] = lambda: 0
        self.before_collect: Callable[[], None] = lambda: None
        self.requests = _Counter("testmode_proxy_requests", "Requests by policy, route, mode and status class.",
                                 ("policy", "route", "mode", "status_class"))
        self.request_seconds = _Histogram("testmode_proxy_request_duration_seconds", "Whole-request latency.",
                                          ("policy", "mode"), _LATENCY)
        self.stage_seconds = _Histogram("testmode_proxy_stage_duration_seconds", "Own time of each pipeline stage.",
                                        ("stage",), _STAGE)
        self._stage_rows: dict[str, list[float]] = {}  # the same rows as stage_seconds.values, keyed by name
        self.upstream_seconds = _Histogram("testmode_proxy_upstream_duration_seconds",
                                           "Time to the provider's response headers.", ("policy",), _LATENCY)
        self.upstream_failures = _Counter("testmode_proxy_upstream_failures",
                                          "Forwards that got no valid answer, by outcome.",
                                          ("policy", "outcome", "reason"))
        self.short_circuits = _Counter("testmode_proxy_short_circuits",
                                       "Test-mode requests answered without the provider.", ("policy", "route"))
        self.rejections = _Counter("testmode_proxy_rejections", "Requests the gateway refused, by stage and reason.",
                                   ("policy", "stage", "reason"))
        self.key_verifications = _Counter("testmode_proxy_key_verifications",
                                          "Pass-through key verdicts per request (cached or asked), by result.",
                                          ("policy", "result"))
        # The never-forward rule, observable: a request that reached the forwarding code while in test
        # mode (or undecided) is refused there and counted here. It must stay 0; the Helm chart's
        # PrometheusRule alerts on any increase.
        self.forward_refusals = _Counter("testmode_proxy_forward_refusals",
                                         "Requests stopped by the forwarding code's own re-check: test-mode or "
                                         "undecided, a method the policy does not use, a URL off the policy's "
                                         "origin (any value above 0 is a bug in an earlier stage).",
                                         ("policy", "reason"))
        registry.register(_Collector(
            (self.requests, self.request_seconds, self.stage_seconds, self.upstream_seconds, self.upstream_failures,
             self.short_circuits, self.rejections, self.key_verifications, self.forward_refusals),
            self._gauges,
            lambda: self.before_collect(),
        ))

    def _gauges(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("testmode_proxy_in_flight", "Requests being handled.", value=self.in_flight())
        yield GaugeMetricFamily("testmode_proxy_event_loop_tasks",
                                "asyncio tasks alive on the gateway's event loop: requests in flight plus a fixed "
                                "few (ticker, scheduler, ledger); one that keeps growing is a leak.",
                                value=_tasks())

    def count_request(self, policy: str, route: str, mode: str, status: int, seconds: float) -> None:
        self.requests.inc((policy, route, mode, _STATUS_CLASSES[status // 100] if status < 600 else "5xx"))
        self.request_seconds.observe((policy, mode), seconds)

    def observe_stages(self, marks: list[tuple[str, float]], end: float) -> None:
        """Each stage's own time: from its mark to the next one (the last one's to ``end``)."""
        rows, bounds = self._stage_rows, self.stage_seconds.bounds
        later = end
        for stage, at in reversed(marks):
            seconds, later = later - at, at
            row = rows.get(stage)
            if row is None:
                row = rows[stage] = self.stage_seconds.values[(stage,)] = [0.0] * (len(bounds) + 2)
            row[bisect_left(bounds, seconds)] += 1
            row[-1] += seconds

    def observe_upstream(self, policy: str, seconds: float) -> None:
        self.upstream_seconds.observe((policy,), seconds)

    def upstream_failure(self, policy: str, outcome: str, reason: str) -> None:
        self.upstream_failures.inc((policy, outcome, reason))

    def short_circuit(self, policy: str, route: str) -> None:
        self.short_circuits.inc((policy, route))

    def rejection(self, policy: str, stage: str, reason: str) -> None:
        self.rejections.inc((policy, stage, reason))

    def forward_refusal(self, policy: str, reason: str) -> None:
        self.forward_refusals.inc((policy, reason))

    def key_verification(self, policy: str, result: str) -> None:
        self.key_verifications.inc((policy, result))


def _tasks() -> int:
    """Counted at scrape time only (``/metrics`` is served on the loop), never per request."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop: a scrape from outside the server
        return 0
