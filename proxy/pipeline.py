"""The request path, in request order. Read this file to know what happens to a request.

Each stage is a pure ASGI middleware (one module in :mod:`proxy.stages`); the last is the terminal
app, :class:`proxy.forward.Forward`, the only code that reaches a provider. A stage passes the
request on, sends a response, or raises :class:`proxy.errors.GatewayError` (rendered by *observe*).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from proxy.forward import Forward
from proxy.stages.auth import Auth
from proxy.stages.body import Body
from proxy.stages.idempotency import Idempotency
from proxy.stages.observe import Observe
from proxy.stages.permission import Permission
from proxy.stages.route import RouteStage
from proxy.stages.sandbox import Sandbox
from proxy.stages.shortcircuit import ShortCircuit
from proxy.stages.testmode import TestMode
from proxy.stages.validate import Validate

if TYPE_CHECKING:
    from proxy.components import Components

Stage = Callable[[ASGIApp], ASGIApp]


def stages(deps: Components) -> list[Stage]:
    """The pipeline, outermost first, built from the composition root's parts."""
    return [
        partial(Observe, metrics=deps.metrics, ledger=deps.ledger,
                max_in_flight=deps.settings.limits.max_in_flight, clock=deps.clock),
        partial(RouteStage, policies=deps.policies, max_header_bytes=deps.settings.limits.max_header_bytes,
                max_headers=deps.settings.limits.max_headers),
        partial(Auth, registry=deps.registry, verifiers=deps.verifiers, credentials=deps.settings.credentials,
                metrics=deps.metrics),
        Permission,
        partial(Body, max_body_bytes=deps.settings.limits.max_body_bytes,
                max_depth=deps.settings.limits.max_json_depth, body_timeout=deps.settings.limits.body_timeout,
                max_json_values=deps.settings.limits.max_json_values),
        TestMode,
        Validate,
        partial(Idempotency, records=deps.idempotency, metrics=deps.metrics, clock=deps.clock),
        partial(Sandbox, sandbox=deps.sandbox, registry=deps.registry, clock=deps.clock),
        partial(ShortCircuit, clock=deps.clock),
    ]


def build(stage_list: list[Stage], terminal: Forward) -> ASGIApp:
    """Wrap ``terminal`` so that the first stage in the list is the outermost (Starlette's loop)."""
    app: ASGIApp = terminal
    for stage in reversed(stage_list):
        app = stage(app)
    return app
