"""An in-process gateway's parts with webhooks, a manual clock and a workspace timeline, for delivery tests."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from proxy.clock import ManualClock
from proxy.components import Components
from proxy.control.app import control_app
from proxy.policy.model import PolicySet
from proxy.store.outbox import Event
from proxy.webhooks.attempts import Attempt
from proxy.webhooks.policy import compile_spec
from proxy.webhooks.subscriptions import Subscription
from tests.support.receiver import Delivery

PUBLIC = "93.184.215.14"  # a global address; never connected to (no test reaches the internet)


def with_webhooks(policies: PolicySet, name: str, section: Mapping[str, Any]) -> PolicySet:
    """``policies`` with ``name``'s ``webhooks:`` section replaced (compiled as the loader would)."""
    spec = compile_spec(section)
    changed = tuple(dataclasses.replace(p, webhooks=spec) if p.name == name else p for p in policies.policies)
    mounts = tuple((prefix, next(c for c in changed if c.name == p.name)) for prefix, p in policies.mounts)
    return PolicySet(changed, mounts)


def blueticked_valid(delivery: Delivery, secret: str) -> bool:
    """Blueticked's check, written here independently: HMAC-SHA256 of the raw body, hex, ``sha256=``."""
    expected = "sha256=" + hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    presented = delivery.headers.get("x-blueticked-signature", "")
    return len(presented) == len(expected) and hmac.compare_digest(presented, expected)


@dataclass
class Harness:
    parts: Components
    clock: ManualClock
    workspace: str
    key: str = ""  # the workspace's sandbox key
    other_key: str = ""  # another workspace's
    hosts: Path | None = None  # the hosts file the guard's resolver reads first (TESTMODE_PROXY_WEBHOOK_HOSTS)

    def resolve(self, name: str, address: str) -> None:
        """From now on ``name`` resolves to ``address`` (the file is re-read when it changes)."""
        assert self.hosts is not None
        lines = [line for line in self.hosts.read_text().splitlines() if name not in line.split()[1:]]
        self.hosts.write_text("\n".join([*lines, f"{address} {name}"]) + "\n")
        stat = self.hosts.stat()
        os.utime(self.hosts, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    def api(self, key: str | None = None) -> httpx.AsyncClient:
        """A client of the control surface, authenticated with ``key`` (default: this workspace's)."""
        app = control_app(self.parts)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw/_testmode",
                                 headers={"authorization": f"Bearer {key or self.key}"})

    @property
    def webhooks(self) -> Any:
        return self.parts.webhooks

    def subscribe(self, url: str, *, events: tuple[str, ...] = (), drills: Mapping[str, float] | None = None,
                  policy: str = "sent", workspace: str | None = None) -> Subscription:
        scheme = self.webhooks.spec(policy).scheme
        sub: Subscription = self.webhooks.subscriptions.add(
            workspace=workspace or self.workspace, policy=policy, url=url, events=events, secret=scheme.new_secret(),
            now=self.clock.time(), drills=drills)
        return sub

    def emit(self, event_type: str, subject: str | None = "msg_1", workspace: str | None = None,
             event_id: str | None = None, **data: Any) -> Event:
        event_id = event_id or "evt_" + os.urandom(8).hex()
        ws = workspace or self.workspace
        payload = orjson.dumps({"id": event_id, "event": event_type, "test": True,
                                "data": {"message_id": subject, **data}})
        stored: Event = self.parts.outbox.append(Event(event_id, ws, event_type, subject,
                                                       self.parts.schedule.now(ws), payload))
        return stored

    async def advance(self, seconds: float) -> None:
        await self.parts.scheduler.advance(self.workspace, seconds)
        await self.idle()

    async def idle(self, within: float = 10.0) -> None:
        """Until nothing is due now and no attempt is in flight (real time, bounded)."""
        deadline = time.monotonic() + within
        schedule, scheduler = self.parts.schedule, self.parts.scheduler
        while time.monotonic() < deadline:
            scheduler.wake()
            await asyncio.sleep(0.01)
            if not scheduler._running and not schedule.due_now(self.clock.time(), 1):
                return
        raise AssertionError("deliveries did not settle")

    def attempts(self, **filters: Any) -> list[Attempt]:
        found: list[Attempt] = self.webhooks.log.attempts(self.workspace, **filters)
        return list(reversed(found))  # oldest first
