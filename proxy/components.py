"""The composition root's parts: built once from the settings, typed, started and closed in order.

Each part that has a lifetime is one :class:`Part` in ``Components.parts``: started in list order
when the server starts, closed in reverse order when it stops (an ``AsyncExitStack``), so adding a
component is one entry, never another hand-ordered line in the lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import httpx
from prometheus_client import CollectorRegistry

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.drift import DriftCheck
from proxy.forward import Forward
from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.ratelimit import Rate, VerificationLimiter
from proxy.keys.registry import KeyRegistry
from proxy.ledger import Ledger
from proxy.logs import CanonicalLog
from proxy.metrics import Metrics
from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet
from proxy.sandbox.runtime import Sandbox
from proxy.scheduler import Scheduler
from proxy.settings import Settings
from proxy.store.database import Database
from proxy.store.idempotency import PURGE
from proxy.store.idempotency_sqlite import SqliteIdempotencyRecords
from proxy.store.outbox import Outbox
from proxy.store.schedule import Schedule
from proxy.webhooks.delivery import Webhooks
from proxy.webhooks.provider import ProviderRoutes


async def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    start: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


@dataclass
class Components:
    settings: Settings
    clock: Clock
    policies: PolicySet
    metrics: Metrics
    ledger: Ledger
    registry: KeyRegistry
    verify_client: httpx.AsyncClient
    verifiers: dict[str, PassthroughVerifier]
    forward: Forward
    db: Database
    schedule: Schedule
    outbox: Outbox
    scheduler: Scheduler
    idempotency: SqliteIdempotencyRecords
    webhooks: Webhooks
    sandbox: Sandbox
    parts: list[Part] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start every part in order; close them in reverse, whatever happens."""
        async with contextlib.AsyncExitStack() as stack:
            for part in self.parts:
                await part.start()
                stack.push_async_callback(part.close)
            yield


def build(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    policies: PolicySet | None = None,
    registry: CollectorRegistry | None = None,
    verify_transport: httpx.AsyncBaseTransport | None = None,
    canonical: CanonicalLog | None = None,
) -> Components:
    policies = policies or load_policies(settings.policies_dir, settings.upstreams)
    metrics = Metrics(registry or CollectorRegistry())
    ledger = Ledger(metrics, canonical)
    verify_client = httpx.AsyncClient(
        transport=verify_transport, trust_env=False, follow_redirects=False,
        timeout=httpx.Timeout(settings.limits.verify_timeout),
    )
    limits = settings.limits
    # One limiter for every policy: a client's verifications count together, whichever provider.
    verify_limiter = VerificationLimiter(
        per_client=Rate(limits.verify_client_per_minute, limits.verify_client_burst),
        overall=Rate(limits.verify_global_per_minute, limits.verify_global_burst),
        trusted_proxies=settings.trusted_proxies,
    )
    verifiers = {
        p.name: PassthroughVerifier(p, verify_client, timeout=limits.verify_timeout, limiter=verify_limiter)
        for p in policies.policies
        if p.keys.passthrough is not None
    }
    db = Database(settings.state_dir / "state.db", synchronous=settings.state_synchronous)
    schedule = Schedule(db, clock)
    scheduler = Scheduler(schedule, clock)
    drift = DriftCheck(policies, metrics.registry)
    forward = Forward(policies=policies, limits=settings.limits, metrics=metrics, drift=drift)
    idempotency = SqliteIdempotencyRecords(db, clock, retention=settings.idempotency_retention)
    scheduler.step(PURGE, lambda tx, item: idempotency.purge_step(tx, item, schedule))
    outbox = Outbox(db)
    webhooks = Webhooks.build(settings, db=db, clock=clock, policies=policies, schedule=schedule,
                              scheduler=scheduler, outbox=outbox, registry=metrics.registry)
    sandbox = Sandbox(db=db, schedule=schedule, scheduler=scheduler, outbox=outbox, clock=clock, policies=policies,
                      lookup_client=verify_client, lookup_timeout=settings.limits.verify_timeout,
                      registry=metrics.registry, webhook_routes=ProviderRoutes(webhooks))
    sandbox.workspaces.on_reset(webhooks.reset_workspace)  # a reset's events are gone: so are their deliveries

    async def schedule_purge() -> None:
        idempotency.schedule_purge(schedule)

    async def flush_idempotency() -> None:
        idempotency.flush()

    async def start_db() -> None:
        db.start()

    async def close_db() -> None:
        db.close()

    async def close_verify() -> None:
        await verify_client.aclose()

    async def flush_ledger() -> None:
        ledger.flush()

    parts = [
        Part("ledger", _nothing, flush_ledger),
        Part("store", start_db, close_db),
        Part("verify_client", _nothing, close_verify),
        Part("forward", forward.start, forward.close),
        Part("idempotency", schedule_purge, flush_idempotency),
        Part("contract_drift", drift.start, drift.close),
        Part("webhooks", webhooks.start, webhooks.close),  # before the scheduler: closed after its effects drain
        Part("scheduler", scheduler.start, partial(scheduler.close, settings.limits.drain_timeout)),
    ]
    return Components(
        settings=settings, clock=clock, policies=policies, metrics=metrics, ledger=ledger,
        registry=KeyRegistry(settings.keys_file), verify_client=verify_client, verifiers=verifiers,
        forward=forward, db=db, schedule=schedule, outbox=outbox, scheduler=scheduler, sandbox=sandbox,
        idempotency=idempotency, webhooks=webhooks, parts=parts,
    )
