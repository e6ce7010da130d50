"""A stage under test, wrapped in *observe* (so raised errors render) and a context seeder, in front
of a terminal app that answers with what the stage left in the context. Driven by httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.context import NO_BODY, RequestContext, context_of
from proxy.metrics import Metrics
from proxy.stages.observe import Observe

Seeder = Callable[[RequestContext], None]


class Terminal:
    """Answers 299 with a JSON snapshot of the context, so tests see what the stage passed on."""

    def __init__(self) -> None:
        self.calls = 0
        self.received_body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        message = await receive()
        self.received_body = message.get("body", b"")
        ctx = context_of(scope)
        snapshot: dict[str, Any] = {
            "test_mode": ctx.test_mode,
            "trigger": ctx.trigger,
            "request_id": ctx.request_id,
            "policy": ctx.policy.name if ctx.policy else None,
            "route": ctx.route.id if ctx.route else None,
            "path": ctx.path,
            "mount_prefix": ctx.mount_prefix,
            "path_params": ctx.path_params,
            "key_id": ctx.key.key_id if ctx.key else None,
            "body": None if ctx.body is NO_BODY else ctx.body,
        }
        body = orjson.dumps(snapshot)
        ctx.status = 299  # a sender records the status (observe's contract)
        await send({"type": "http.response.start", "status": 299,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class Seed:
    def __init__(self, app: ASGIApp, seeder: Seeder) -> None:
        self.app = app
        self.seeder = seeder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = context_of(scope)
        names = [k.decode("latin-1").lower() for k, _ in scope["headers"]]
        ctx.headers = {}
        for name, (_, value) in zip(names, scope["headers"], strict=True):
            ctx.headers.setdefault(name, value.decode("latin-1"))
        ctx.duplicate_headers = frozenset(n for n in names if names.count(n) > 1)
        self.seeder(ctx)
        await self.app(scope, receive, send)


def harness(
    stage: Callable[[ASGIApp], ASGIApp], seeder: Seeder = lambda ctx: None, metrics: Metrics | None = None
) -> tuple[httpx.AsyncClient, Terminal]:
    terminal = Terminal()
    app = Observe(Seed(stage(terminal), seeder), metrics=metrics or Metrics(CollectorRegistry()))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return client, terminal
