"""Stage 4, *permission*: the key's scopes must cover the route's scope.

Declared routes carry their own scope; undeclared paths need the policy's ``unmatched_scopes``
(``read`` for GET/HEAD, ``write`` otherwise).

Reads: ``ctx.key``, ``ctx.route``, ``ctx.policy``. Writes: nothing. Ends a request with: 403 ``forbidden``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.context import begin
from proxy.errors import GatewayError
from proxy.verdict import SAFE_METHODS


class Permission:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "permission")
        policy, key = ctx.policy, ctx.key
        assert policy is not None and key is not None
        if ctx.route is not None:
            needed = ctx.route.scope
        elif scope["method"] in SAFE_METHODS:
            needed = policy.unmatched_read_scope
        else:
            needed = policy.unmatched_write_scope
        if not key.allows(needed):
            raise GatewayError(403, "forbidden", f"This API key lacks the '{needed}' scope.", reason="missing_scope")
        await self.app(scope, receive, send)
