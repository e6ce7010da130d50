"""The sandbox capability, assembled once by the composition root (:mod:`proxy.components`).

Used by the *sandbox* stage (:mod:`proxy.stages.sandbox`: the answers to sandbox keys) and by the
control surface (:mod:`proxy.control.sandbox`: clock, inbound, forced events, reset, seed). Building
it registers the lifecycle's step kinds with the scheduler, so steps left in the store by a previous
run are handled from the scheduler's first pass.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client import CollectorRegistry, Histogram

from proxy.clock import Clock
from proxy.errors import GatewayError
from proxy.policy.model import PolicySet
from proxy.sandbox.contacts import Contacts
from proxy.sandbox.inbound import Inbound
from proxy.sandbox.lifecycle import Lifecycle
from proxy.sandbox.lookups import LiveLookups
from proxy.sandbox.messages import Messages
from proxy.sandbox.parts import Answer, Call, Parts
from proxy.sandbox.suppression import Suppressions
from proxy.sandbox.templates import Templates
from proxy.sandbox.workspaces import Workspace, Workspaces
from proxy.scheduler import Scheduler
from proxy.store.database import Database
from proxy.store.group_commit import GroupCommit
from proxy.store.outbox import Outbox
from proxy.store.schedule import Schedule
from proxy.webhooks.provider import ProviderRoutes

Operation = Callable[[Workspace, Call], Answer]
# Operations that write: answered after their group commit (proxy/store/group_commit.py).
WRITES = frozenset({"contacts.upsert", "contacts.update", "suppression.add", "suppression.remove",
                    "templates.create", "messages.send"})
# Lateness of scheduled steps: a lifecycle promises a transition every `step`; this says how well.
_LATENESS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Sandbox:
    def __init__(
        self, *, db: Database, schedule: Schedule, scheduler: Scheduler, outbox: Outbox, clock: Clock,
        policies: PolicySet, lookup_client: httpx.AsyncClient, lookup_timeout: float,
        registry: CollectorRegistry | None = None, webhook_routes: ProviderRoutes | None = None,
    ) -> None:
        self.workspaces = Workspaces(db, schedule, outbox, policies)
        self.parts = Parts(db, self.workspaces, outbox, schedule, scheduler, clock)
        self.suppressions = Suppressions(self.parts)
        self.contacts = Contacts(self.parts, self.suppressions)
        self.templates = Templates(self.parts)
        self.inbound = Inbound(self.parts, self.contacts, self.suppressions)
        self.lifecycle = Lifecycle(self.parts, self.inbound)
        self.messages = Messages(self.parts, self.lifecycle)
        self.lookups = LiveLookups(lookup_client, lookup_timeout)
        self.commits = GroupCommit(db)
        self.webhook_routes = webhook_routes  # webhooks.* operations: subscriptions through the provider's routes
        self.operations: dict[str, Operation] = {
            "contacts.upsert": self.contacts.upsert, "contacts.list": self.contacts.list,
            "contacts.get": self.contacts.get, "contacts.update": self.contacts.update,
            "suppression.add": self.suppressions.add, "suppression.list": self.suppressions.list,
            "suppression.remove": self.suppressions.remove,
            "templates.create": self.templates.create, "templates.list": self.templates.list,
            "templates.get": self.templates.get,
            "messages.send": self.messages.send, "messages.list": self.messages.list,
            "messages.get": self.messages.get,
        }
        if registry is not None:
            lateness = Histogram("testmode_proxy_scheduler_lateness_seconds",
                                 "How late scheduled steps ran, on their timeline, by kind.", ["kind"],
                                 registry=registry, buckets=_LATENESS)
            scheduler.lateness = lambda kind, seconds: lateness.labels(kind).observe(seconds)

    def handle(self, operation: str, ws: Workspace, call: Call) -> Answer:
        """Run ``operation`` now, each of its writes in its own transaction (tests, and reads)."""
        return self.operations[operation](ws, call)

    async def answer(self, operation: str, ws: Workspace, call: Call) -> Answer:
        """The answer to a sandbox request: reads (and validate-only sends, which write nothing) at once;
        writes once committed, together with the other writes of this turn of the event loop."""
        if operation.startswith("webhooks."):
            if self.webhook_routes is None:
                raise GatewayError(404, "test_mode_unsupported", "Webhook subscriptions are not simulated here.")
            return await self.webhook_routes.handle(operation, ws.id, ws.policy.name, call.body, call.path)
        if operation not in WRITES or (operation == "messages.send" and call.body.get("test_mode") is True):
            return self.handle(operation, ws, call)
        # The workspace's own row and timeline commit first, on their own (proxy/sandbox/workspaces.py):
        # a write rolled back in the group must not take them with it while they stay cached as made.
        self.workspaces.ensure(ws)
        return await self.commits.run(lambda: self.handle(operation, ws, call))
