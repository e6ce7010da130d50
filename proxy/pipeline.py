"""The request path, in request order. Read this file to know what happens to a request.

Each stage is a pure ASGI middleware (one module in :mod:`proxy.stages`); the last is the terminal
app, :class:`proxy.forward.Forward`, the only code that reaches a provider. A stage passes the
request on, sends a response, or raises :class:`proxy.errors.GatewayError` (rendered by *observe*).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.types import ASGIApp

from proxy.forward import Forward
from proxy.stages.auth import Auth
from proxy.stages.body import Body
from proxy.stages.observe import Observe
from proxy.stages.permission import Permission
from proxy.stages.route import RouteStage
from proxy.stages.shortcircuit import ShortCircuit
from proxy.stages.testmode import TestMode
from proxy.stages.validate import Validate

Stage = Callable[[ASGIApp], ASGIApp]


def stages(deps: Any) -> list[Stage]:
    """The pipeline, outermost first. ``deps`` is the :class:`proxy.app.Gateway` holding configuration."""
    return [
        partial(Observe, metrics=deps.metrics, ledger=deps.ledger,
                max_in_flight=deps.settings.limits.max_in_flight),
        partial(RouteStage, policies=deps.policies, max_header_bytes=deps.settings.limits.max_header_bytes,
                max_headers=deps.settings.limits.max_headers),
        partial(Auth, registry=deps.registry, verifiers=deps.verifiers, credentials=deps.settings.credentials,
                metrics=deps.metrics),
        Permission,
        partial(Body, max_body_bytes=deps.settings.limits.max_body_bytes,
                max_depth=deps.settings.limits.max_json_depth, body_timeout=deps.settings.limits.body_timeout),
        TestMode,
        Validate,
        ShortCircuit,
    ]


def build(stage_list: list[Stage], terminal: Forward) -> ASGIApp:
    """Wrap ``terminal`` so that the first stage in the list is the outermost (Starlette's loop)."""
    app: ASGIApp = terminal
    for stage in reversed(stage_list):
        app = stage(app)
    return app
