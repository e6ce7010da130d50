"""The ASGI application: a three-way switch in front of the pipeline.

The gateway's own health/metrics paths go to a small Starlette app (which also runs the lifespan),
the control surface under ``/_testmode`` to :mod:`proxy.control`, everything else to the pipeline.
No per-request routing table is consulted for provider traffic before the pipeline's own *route*
stage. The parts themselves are built once in :mod:`proxy.components`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from proxy import components
from proxy.admin import ADMIN_PATHS, admin_routes
from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.control.app import CONTROL_PREFIX, control_app, problem
from proxy.errors import GatewayError
from proxy.logs import CanonicalLog
from proxy.pipeline import build, stages
from proxy.policy.model import PolicySet
from proxy.settings import Settings


class Gateway:
    """The ASGI application. Holds configuration only; per-request state lives in the context."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        policies: PolicySet | None = None,
        registry: CollectorRegistry | None = None,
        verify_transport: httpx.AsyncBaseTransport | None = None,
        canonical: CanonicalLog | None = None,
    ) -> None:
        self.settings = settings
        self.parts = components.build(settings, clock=clock, policies=policies, registry=registry,
                                      verify_transport=verify_transport, canonical=canonical)
        self.policies = self.parts.policies
        self.metrics = self.parts.metrics
        self.registry = self.parts.registry
        self.pipeline = build(stages(self.parts), self.parts.forward)
        self.control = control_app(self.parts)
        self.admin = Starlette(routes=admin_routes(self), lifespan=self._lifespan,
                               exception_handlers={Exception: _internal_error})  # JSON, never text/plain
        self._draining: asyncio.Future[None] | None = None
        self.ready = False

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.parts.running():
            # Everything built at start-up (policies, compiled schemas, modules) is moved out of the
            # cyclic collector's sight, and young collections run every 20,000 allocations instead of
            # 700: with dozens of requests in flight each young collection rescanned their live objects.
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 10, 10)
            collector = asyncio.create_task(_collect_cycles(), name="testmode-proxy-gc")
            self.ready = True
            try:
                yield
            finally:
                self.ready = False
                collector.cancel()

    def begin_drain(self) -> None:
        """Shutdown began (SIGTERM): stop being ready, and start draining background work now, in
        parallel with the server's own draining of in-flight requests (:class:`proxy.server.DrainingServer`)."""
        self.ready = False
        self._draining = asyncio.ensure_future(self.parts.scheduler.close(self.settings.limits.drain_timeout))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(CONTROL_PREFIX):
                await self.control(scope, receive, send)
                return
            if path not in ADMIN_PATHS:
                await self.pipeline(scope, receive, send)
                return
        await self.admin(scope, receive, send)


async def _collect_cycles(interval: float = 10.0) -> None:
    """A full collection every ``interval`` seconds. With young collections 20,000 allocations apart, garbage in
    reference cycles could otherwise wait many minutes (an httpx exchange, as in key verification, leaves ~40
    such objects; issue 15's soak saw memory climb 2.4 MiB per 10 minutes). Start-up objects are frozen, so a
    full collection sees only those made since (~3,000 under load): 0.3 to 1.5 ms each."""
    while True:
        await asyncio.sleep(interval)
        gc.collect()


async def _internal_error(request: Request, exc: Exception) -> Response:
    return problem(GatewayError(500, "internal_error", "Internal gateway error."))
