"""proxy/ledger.py: finished requests are accounted in batches, and never later than a scrape or shutdown."""

from __future__ import annotations

import asyncio
import calendar
import io
import time

import orjson
from prometheus_client import CollectorRegistry

from proxy.context import NO_BODY, RequestContext
from proxy.ledger import Ledger
from proxy.logs import CanonicalLog
from proxy.metrics import Metrics


def _finished(n: int) -> RequestContext:
    ctx = RequestContext(f"{n:024x}", f"req_{n:024x}")
    ctx.status = 201
    ctx.body, ctx.body_bytes = {"big": "x" * 1000}, b"x" * 1000
    ctx.mark("observe")
    return ctx


def _ledger(batch: int = 4, interval: float = 60.0) -> tuple[Ledger, io.BytesIO, CollectorRegistry]:
    stream = io.BytesIO()
    registry = CollectorRegistry()
    canonical = CanonicalLog(stream)
    return Ledger(Metrics(registry), canonical, batch=batch, interval=interval), stream, registry


def _lines(stream: io.BytesIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def _requests(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("testmode_proxy_requests_total",
                                     {"policy": "none", "route": "unmatched", "mode": "undecided",
                                      "status_class": "2xx"})


async def test_a_full_batch_is_accounted_at_once() -> None:
    ledger, stream, _ = _ledger(batch=3)
    for n in range(2):
        ledger.record(_finished(n), "POST", "/v3/x", time.perf_counter())
    assert _lines(stream) == []
    ledger.record(_finished(2), "POST", "/v3/x", time.perf_counter())
    assert [line["request_id"] for line in _lines(stream)] == [f"req_{n:024x}" for n in range(3)]


async def test_a_partial_batch_is_accounted_after_the_interval() -> None:
    ledger, stream, _ = _ledger(batch=100, interval=0.05)
    ledger.record(_finished(1), "GET", "/v3/x", time.perf_counter())
    assert _lines(stream) == []
    await asyncio.sleep(0.2)
    assert len(_lines(stream)) == 1


async def test_a_scrape_sees_every_finished_request() -> None:
    ledger, _, registry = _ledger(batch=100)
    for n in range(5):
        ledger.record(_finished(n), "GET", "/v3/x", time.perf_counter())
    assert _requests(registry) == 5.0
    assert registry.get_sample_value("testmode_proxy_stage_duration_seconds_count", {"stage": "observe"}) == 5.0


async def test_a_synthesized_answer_counts_as_a_short_circuit() -> None:
    ledger, _, registry = _ledger(batch=100)
    answered, refused = _finished(1), _finished(2)
    answered.answered_by = "synthesized"
    for ctx in (answered, refused):
        ledger.record(ctx, "POST", "/v3/x", time.perf_counter())
    assert registry.get_sample_value("testmode_proxy_short_circuits_total",
                                     {"policy": "none", "route": "unmatched"}) == 1.0


async def test_the_log_line_keeps_the_time_the_request_ended() -> None:
    ledger, stream, _ = _ledger(batch=100)
    ended = time.perf_counter()
    wall = time.time()
    ledger.record(_finished(1), "GET", "/v3/x", ended)
    await asyncio.sleep(0.3)
    ledger.flush()
    [line] = _lines(stream)
    stamp = str(line["timestamp"])
    logged = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + stamp[19:-1])
    assert abs(logged - wall) < 0.05  # not the flush time, 0.3 s later


async def test_a_pending_request_does_not_hold_its_body() -> None:
    ledger, _, _ = _ledger(batch=100)
    ctx = _finished(1)
    ledger.record(ctx, "POST", "/v3/x", time.perf_counter())
    assert ctx.body is NO_BODY and ctx.body_bytes == b""


def test_without_a_running_loop_a_request_is_accounted_at_once() -> None:
    ledger, stream, _ = _ledger(batch=100)
    ledger.record(_finished(1), "GET", "/v3/x", time.perf_counter())
    assert len(_lines(stream)) == 1
