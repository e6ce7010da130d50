"""Contract drift on live traffic (issue 14): does the provider still answer as the test mode does?

A sample of live answers (the policy's ``contract.drift_sample_rate``, default 1 %, 0 off) is checked against
the schema the route's synthesized answer follows (:mod:`proxy.policy.contract`). Mismatches are counted by
policy, route and JSON path (``testmode_proxy_contract_drift_total``) and logged with the path and the
expected type, never the value: a platform team learns that the provider changed, and that test mode no
longer matches it, before its developers do.

Off the hot path: the forwarding code asks :meth:`DriftCheck.sample` once per live answer (one dict lookup
and one random draw); for a sampled one (1 in 100) it keeps the body, if it is small, and hands it to
:meth:`DriftCheck.offer` after the client has it (an append to a bounded queue). A background
task validates what is queued, and a ``/metrics`` scrape drains the queue first, so a drift is counted by
the next scrape. A full queue drops the sample (counted as ``dropped``) rather than grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.context import RequestContext
from proxy.policy.model import PolicySet

log = structlog.get_logger("proxy.drift")

MAX_BODY = 64 * 1024  # larger answers are not checked: the check is for shapes, and memory stays bounded
QUEUE_LIMIT = 256  # samples waiting; at 1 % that is 25,600 live requests ahead of the checker
MAX_PATHS = 50  # distinct path labels per policy and route; past it, "(other)": label values stay bounded
_BATCH = 16  # samples checked before the task yields to the loop


@dataclass(frozen=True, slots=True)
class Finding:
    """Where a body left its schema: a JSON path (array indices as ``[*]``) and what the schema expects there."""

    path: str
    expected: str


def _path(parts: Iterable[str | int]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += "[*]"
        elif part.isidentifier():
            out += "." + part
        else:
            out += "[" + orjson.dumps(part).decode() + "]"
    return out


def _types(value: Any) -> str:
    return "|".join(value) if isinstance(value, list) else str(value)


def _expected(error: ValidationError) -> Iterator[Finding]:
    keyword, path = error.validator, list(error.absolute_path)
    value: Any = error.validator_value
    if keyword == "required" and isinstance(error.instance, dict):
        for name in value:
            if name not in error.instance:
                yield Finding(_path([*path, name]), "present")
        return
    if keyword == "type":
        expected = _types(value)
    elif keyword in ("anyOf", "oneOf"):
        options = [_types(s["type"]) if isinstance(s, dict) and "type" in s else "object" for s in value]
        expected = "|".join(dict.fromkeys(options))
    elif keyword == "const":
        expected = "const " + orjson.dumps(value).decode()  # the schema's constant, not the body's value
    elif keyword == "format":
        expected = f"format {value}"
    else:
        expected = str(keyword)
    yield Finding(_path(path), expected)


def findings(validator: Draft7Validator, document: Any) -> list[Finding]:
    """Every place ``document`` leaves the schema, once each, in path order."""
    found = {f for error in validator.iter_errors(document) for f in _expected(error)}
    return sorted(found, key=lambda f: (f.path, f.expected))


class Kept:
    """A streamed answer's body kept for the check, up to :data:`MAX_BODY` bytes (past that, nothing)."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_BODY:
            self.parts.append(chunk)
        else:
            self.parts.clear()

    def body(self) -> bytes | None:
        return b"".join(self.parts) if self.size <= MAX_BODY else None


@dataclass(frozen=True, slots=True)
class _Sample:
    policy: str
    route: str
    status: int
    body: bytes


class DriftCheck:
    """Samples live answers, checks them in the background, and counts what drifted."""

    def __init__(self, policies: PolicySet, registry: CollectorRegistry | None = None, *,
                 draw: Callable[[], float] = random.random, queue_limit: int = QUEUE_LIMIT) -> None:
        self.policies = {p.name: p for p in policies.policies}
        # Only policies that sample at all; a rate of 0 costs one failed lookup.
        self.rates = {p.name: p.contract.sample_rate for p in policies.policies
                      if p.contract is not None and p.contract.sample_rate > 0}
        self.draw = draw
        self.queue: deque[_Sample] = deque()
        self.queue_limit = queue_limit
        self.drift: dict[tuple[str, str, str], float] = {}
        self.checks: dict[tuple[str, str], float] = {}
        self._paths: dict[tuple[str, str], set[str]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if registry is not None:
            registry.register(_DriftCollector(self))

    # ------------------------------------------------------------------ the hot path
    def sample(self, ctx: RequestContext) -> bool:
        """Whether to keep this live answer for the check: a declared route, at the policy's rate."""
        policy = ctx.policy
        if policy is None or ctx.route is None:
            return False
        rate = self.rates.get(policy.name)
        return rate is not None and self.draw() < rate

    def offer(self, ctx: RequestContext, status: int, body: bytes) -> None:
        """A sampled answer's body (at most :data:`MAX_BODY` bytes), queued for the background check."""
        assert ctx.policy is not None and ctx.route is not None
        if len(self.queue) >= self.queue_limit:
            self._count(ctx.policy.name, "dropped")
            return
        self.queue.append(_Sample(ctx.policy.name, ctx.route.id, status, body))
        self._wake.set()

    # ------------------------------------------------------------------ off it
    def drain(self, limit: int | None = None) -> None:
        """Check queued samples (all of them, or ``limit``); the scrape and the task both call this."""
        done = 0
        while self.queue and (limit is None or done < limit):
            self._check(self.queue.popleft())
            done += 1

    def _check(self, sample: _Sample) -> None:
        policy = self.policies[sample.policy]
        contract = policy.contract
        documented = contract.documented(sample.route, sample.status) if contract is not None else None
        if documented is None or documented.validator is None:
            self._count(sample.policy, "undocumented")
            return
        try:
            document = orjson.loads(sample.body)
        except orjson.JSONDecodeError:
            found = [Finding("$", "json")]
        else:
            found = findings(documented.validator, document)
        self._count(sample.policy, "drift" if found else "ok")
        for finding in found:
            path = self._label(sample.policy, sample.route, finding.path)
            key = (sample.policy, sample.route, path)
            self.drift[key] = self.drift.get(key, 0.0) + 1
            log.warning("contract_drift", policy=sample.policy, route=sample.route, status=sample.status,
                        path=finding.path, expected=finding.expected)

    def _label(self, policy: str, route: str, path: str) -> str:
        seen = self._paths.setdefault((policy, route), set())
        if path in seen or len(seen) < MAX_PATHS:
            seen.add(path)
            return path
        return "(other)"

    def _count(self, policy: str, result: str) -> None:
        self.checks[(policy, result)] = self.checks.get((policy, result), 0.0) + 1

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                self.drain(_BATCH)
                await asyncio.sleep(0)  # let requests run between batches

    async def start(self) -> None:
        if self.rates:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="contract-drift")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.drain()


class _DriftCollector(Collector):
    def __init__(self, check: DriftCheck) -> None:
        self.check = check

    def collect(self) -> Iterator[Metric]:
        self.check.drain()  # counted by this scrape, not the next one
        drift = CounterMetricFamily(
            "testmode_proxy_contract_drift",
            "Sampled live answers that left the route's documented schema, by JSON path (policy contract).",
            labels=("policy", "route", "path"))
        for path_labels, value in self.check.drift.items():
            drift.add_metric(list(path_labels), value)
        yield drift
        checks = CounterMetricFamily(
            "testmode_proxy_contract_checks", "Sampled live answers, by result (ok, drift, undocumented, dropped).",
            labels=("policy", "result"))
        for labels, value in self.check.checks.items():
            checks.add_metric(list(labels), value)
        yield checks
