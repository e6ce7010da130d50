"""A sandbox runtime on a fresh store and a manual clock, with the Blueticked policy's section: the
world unit tests of proxy/sandbox/ and of the sandbox stage run in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.clock import ManualClock
from proxy.errors import GatewayError
from proxy.policy.loader import load_policies
from proxy.policy.model import Policy
from proxy.sandbox.parts import Call
from proxy.sandbox.runtime import Sandbox
from proxy.sandbox.workspaces import Workspace
from proxy.scheduler import Scheduler
from proxy.store.database import Database
from proxy.store.outbox import Outbox
from proxy.store.schedule import Schedule
from tests.support.servers import POLICIES


@dataclass
class World:
    sandbox: Sandbox
    clock: ManualClock
    db: Database
    outbox: Outbox
    scheduler: Scheduler
    policy: Policy

    def workspace(self, key_id: str = "key_a", named: str | None = None) -> Workspace:
        return self.sandbox.workspaces.resolve(self.policy, key_id, named)

    def call(self, operation: str, ws: Workspace, body: dict[str, Any] | None = None,
             path: dict[str, str] | None = None, **query: str) -> Any:
        status, doc = self.sandbox.handle(operation, ws, Call(body or {}, path or {}, query))
        assert 200 <= status < 300
        return doc

    def refused(self, operation: str, ws: Workspace, body: dict[str, Any] | None = None,
                path: dict[str, str] | None = None, **query: str) -> GatewayError:
        with pytest.raises(GatewayError) as caught:
            self.sandbox.handle(operation, ws, Call(body or {}, path or {}, query))
        return caught.value

    async def advance(self, ws: Workspace, seconds: float) -> int:
        self.sandbox.workspaces.ensure(ws)
        return await self.scheduler.advance(ws.id, seconds)

    def rows(self) -> dict[str, int]:
        tables = [r[0] for r in self.db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: self.db.conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}

    def setup(self, ws: Workspace, phone: str = "+27800000001") -> dict[str, Any]:
        """A contact and an approved template in ``ws``; the template."""
        self.call("contacts.upsert", ws, {"phone": phone})
        template: dict[str, Any] = self.call("templates.create", ws, {
            "name": "statement_ready_v1", "category": "utility", "language": "en_US",
            "body": "Hi {{1}}, your statement for {{2}} is ready."})
        return template


@contextmanager
def make_world(tmp_path: Path) -> Iterator[World]:
    clock = ManualClock()
    db = Database(tmp_path / "state.db")
    schedule = Schedule(db, clock)
    scheduler = Scheduler(schedule, clock)
    outbox = Outbox(db)
    policies = load_policies(POLICIES)
    policy = policies.by_name("blueticked")
    assert policy is not None
    sandbox = Sandbox(db=db, schedule=schedule, scheduler=scheduler, outbox=outbox, clock=clock, policies=policies,
                      lookup_client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
                      lookup_timeout=1.0)
    yield World(sandbox, clock, db, outbox, scheduler, policy)
    db.close()
