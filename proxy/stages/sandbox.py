"""Stage 9, *sandbox*: a sandbox key's request is answered from its workspace, reads included.

A responder like *short-circuit*: it answers or passes on, never both. It acts only on test requests
of a policy with a ``sandbox`` section (:mod:`proxy.sandbox.spec`); every other request passes on after
two attribute reads, so the stateless test-mode and live paths never touch the store.

* A **sandbox key** (an issued test key, or a key with the policy's test prefix such as ``blu_test_``)
  is answered by the operation its route names (``sandbox.operations``), in its workspace
  (:mod:`proxy.sandbox.workspaces`). A route with no operation, or a path no route declares, is 404
  ``test_mode_unsupported``: nothing a sandbox key sends reaches the provider (*forward* re-checks this
  in :func:`proxy.verdict.may_reach_provider`).
* A **live key** with ``test_mode: true`` on the send route is a validate-only send against the
  provider's own data, read back with read-only GETs (:mod:`proxy.sandbox.lookups`). On any other route
  it passes on to *short-circuit*.

Reads: ``ctx.test_mode``, ``ctx.policy``, ``ctx.route``, ``ctx.key``, ``ctx.body``, ``ctx.path_params``.
Writes: ``ctx.answered_by`` (``sandbox``). Ends a request with: the operation's answer; its policy
errors (``sandbox.errors``); 404 ``test_mode_unsupported``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.context import SCOPE_KEY, RequestContext
from proxy.errors import GatewayError
from proxy.keys.registry import KeyRegistry
from proxy.policy.model import Policy
from proxy.render import JSON, send_json
from proxy.sandbox.parts import Call
from proxy.sandbox.runtime import Sandbox as SandboxRuntime
from proxy.sandbox.workspaces import Workspace
from proxy.verdict import key_trigger

log = structlog.get_logger("proxy.stages")


def sandbox_workspace(runtime: SandboxRuntime, registry: KeyRegistry, policy: Policy, ctx: RequestContext) -> Workspace:
    """The workspace of the request's sandbox key: the one an issued key is bound to, else the key's own."""
    key = ctx.key
    assert key is not None
    named = None
    if key.kind == "issued" and (entry := registry.lookup(key.presented)) is not None:
        named = entry.workspace
    return runtime.workspaces.resolve(policy, key.key_id, named)


class Sandbox:
    def __init__(self, app: ASGIApp, *, sandbox: SandboxRuntime, registry: KeyRegistry,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.app = app
        self.sandbox = sandbox
        self.registry = registry
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: RequestContext = scope[SCOPE_KEY]
        policy = ctx.policy
        if not ctx.test_mode or policy is None or (spec := policy.sandbox) is None:
            await self.app(scope, receive, send)  # the stateless paths: nothing else is looked at
            return
        ctx.mark("sandbox")
        route = ctx.route
        operation = spec.operations.get(route.id) if route is not None else None
        if key_trigger(policy, ctx) is None:  # a live key asking for validate-only
            if operation != "messages.send":
                await self.app(scope, receive, send)
                return
            status, doc = await self.sandbox.lookups.validate(policy, ctx)
        else:
            if operation is None:
                raise GatewayError(404, "test_mode_unsupported",
                                   f"{scope['method']} {ctx.path[:100]} is not simulated in the sandbox; "
                                   f"nothing was sent.", reason="not_simulated")
            query = dict(parse_qsl(scope["query_string"].decode("latin-1"))) if scope.get("query_string") else {}
            body: dict[str, Any] = ctx.body if isinstance(ctx.body, dict) else {}  # a read has none
            ws = sandbox_workspace(self.sandbox, self.registry, policy, ctx)
            status, doc = await self.sandbox.answer(operation, ws, Call(body, ctx.path_params, query))
        ctx.answered_by = "sandbox"
        if logs.DEBUG:
            log.debug("sandbox_answered", route=ctx.route_label, status=status)
        headers: list[tuple[bytes, bytes]] = [(b"x-request-id", ctx.request_id.encode()), *policy.test_headers,
                                              (b"content-type", JSON)]
        await send_json(send, ctx, status, orjson.dumps(doc), headers, self.clock)
