"""Stage 7, *validation*: the route's JSON Schema and rules, every finding at once.

Test requests are always validated (the provider would validate them). Live requests are validated
only when the policy says ``live.validate: true``; otherwise the provider judges them itself and
the gateway stays transparent.

The work is bounded whatever the body (security issue, item 2; proxy/policy/findings.py): at most
100 findings, then a note that the list was cut, and each pass within a step budget of a few tens of
milliseconds, so one request cannot stall the event loop or grow the process.

Reads: ``ctx.route``, ``ctx.body``, ``ctx.test_mode``. Writes: nothing. Ends a request with: 400
``validation_error`` listing each finding.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.context import NO_BODY, begin
from proxy.errors import GatewayError


class Validate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "validate")
        route, policy = ctx.route, ctx.policy
        assert policy is not None
        if route is not None and ctx.body is not NO_BODY and (ctx.test_mode or policy.validate_live):
            findings = route.validator.check(ctx.body)
            if findings:
                raise GatewayError(400, "validation_error",
                                   findings[0].message if len(findings) == 1 else "The request body is invalid.",
                                   items=findings, reason="schema")
        await self.app(scope, receive, send)
