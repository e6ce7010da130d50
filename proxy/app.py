"""Assemble the gateway: policies, keys, metrics, the pipeline, and the admin endpoints.

The outer app is a two-way switch: the gateway's own paths go to a small Starlette app (which also
runs the lifespan), everything else to the pipeline. No per-request routing table is consulted
for provider traffic before the pipeline's own *route* stage.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from proxy.admin import ADMIN_PATHS, admin_routes
from proxy.forward import Forward
from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.registry import KeyRegistry
from proxy.ledger import Ledger
from proxy.logs import CanonicalLog
from proxy.metrics import Metrics
from proxy.pipeline import build, stages
from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet
from proxy.settings import Settings


class Gateway:
    """The ASGI application. Holds configuration only; per-request state lives in the context."""

    def __init__(
        self,
        settings: Settings,
        *,
        policies: PolicySet | None = None,
        registry: CollectorRegistry | None = None,
        verify_transport: httpx.AsyncBaseTransport | None = None,
        canonical: CanonicalLog | None = None,
    ) -> None:
        self.settings = settings
        self.policies = policies or load_policies(settings.policies_dir, settings.upstreams)
        self.metrics = Metrics(registry or CollectorRegistry())
        self.ledger = Ledger(self.metrics, canonical)
        self.registry = KeyRegistry(settings.keys_file)
        self.verify_client = httpx.AsyncClient(
            transport=verify_transport, trust_env=False, follow_redirects=False,
            timeout=httpx.Timeout(settings.limits.verify_timeout),
        )
        self.verifiers = {
            p.name: PassthroughVerifier(p, self.verify_client, timeout=settings.limits.verify_timeout)
            for p in self.policies.policies
            if p.keys.passthrough is not None
        }
        self.forward = Forward(policies=self.policies, limits=settings.limits, metrics=self.metrics)
        self.pipeline = build(stages(self), self.forward)
        self.admin = Starlette(routes=admin_routes(self), lifespan=self._lifespan)
        self.ready = False

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.forward.start()
        # Everything built at start-up (policies, compiled schemas, modules) is moved out of the
        # cyclic collector's sight, and young collections run every 20,000 allocations instead of
        # 700: with dozens of requests in flight each young collection rescanned their live objects.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await self.forward.close()
            await self.verify_client.aclose()
            self.ledger.flush()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in ADMIN_PATHS:
            await self.pipeline(scope, receive, send)
        else:
            await self.admin(scope, receive, send)
