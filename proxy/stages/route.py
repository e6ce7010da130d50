"""Stage 2, *route*: pick the policy and route for the request.

Each policy is mounted at its ``prefixes`` (``/sent`` for a client whose base URL is
``http://gw/sent``; ``""`` for the root). A path that matches a declared route is that route's; an
undeclared path belongs to the policy with the longest matching prefix, and at a prefix several
policies share, to the one whose key header the request carries.

Reads: scope method, path, headers. Writes: ``ctx.policy``, ``route``, ``path``, ``path_params``,
``headers``, ``duplicate_headers``. Ends a request with: 404 ``not_found`` (problem details) when no
policy claims the path; 400 ``bad_request`` for a request target that is not a clean path or a
method-override header, 405 ``method_not_allowed`` for a method the policy does not use
(:mod:`proxy.target`); 431 ``headers_too_large`` past the header limits (count, total bytes; Envoy's
edge defaults).
"""

from __future__ import annotations

from contextlib import suppress

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.context import RequestContext, begin
from proxy.errors import GatewayError
from proxy.policy.model import Policy, PolicySet, Route
from proxy.target import clean_path, decoded_params, refuse_method_override, require_method


class RouteStage:
    def __init__(
        self, app: ASGIApp, *, policies: PolicySet, max_header_bytes: int = 16384, max_headers: int = 100
    ) -> None:
        self.app = app
        self.policies = policies
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.exact = _exact_routes(policies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "route")
        raw_headers = scope["headers"]
        if len(raw_headers) > self.max_headers:
            raise _too_large()
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
        if len(headers) == len(raw_headers):  # the common case: every name once
            size = sum(map(len, headers)) + sum(map(len, headers.values()))
        else:
            headers, size = _first_values(ctx, raw_headers)
        if size > self.max_header_bytes:
            raise _too_large()
        ctx.headers = headers
        try:
            path = clean_path(scope)  # the one path routing and forwarding use (proxy/target.py)
            refuse_method_override(headers)
        except GatewayError:
            self._dialect_for(ctx, scope["path"], headers)
            raise
        method: str = scope["method"]
        hit = self.exact.get((method, path))
        if hit is not None:
            ctx.policy, ctx.route, ctx.mount_prefix = hit
            ctx.path = path[len(ctx.mount_prefix):]
            await self.app(scope, receive, send)
            return
        fallback: list[tuple[str, Policy]] = []
        for prefix, policy in self.policies.mounts:
            if prefix and not (path == prefix or path.startswith(prefix + "/")):
                continue
            inner = path[len(prefix):] or "/"
            found = policy.match(method, inner)
            if found is not None:
                ctx.policy, ctx.path, ctx.mount_prefix = policy, inner, prefix
                ctx.route, params = found
                ctx.path_params = decoded_params(params)
                await self.app(scope, receive, send)
                return
            fallback.append((prefix, policy))
        ctx.policy, ctx.mount_prefix = self._unmatched(fallback, headers, path)
        require_method(ctx.policy, method)  # a declared route's method is allowed by construction
        ctx.path = path[len(ctx.mount_prefix):] or "/"
        await self.app(scope, receive, send)

    @staticmethod
    def _unmatched(candidates: list[tuple[str, Policy]], headers: dict[str, str], path: str) -> tuple[Policy, str]:
        """(policy, its mount prefix) for a path no declared route matched."""
        if candidates:
            longest = len(candidates[0][0])
            best = [(prefix, p) for prefix, p in candidates if len(prefix) == longest]
            if len(best) > 1:
                best = [(prefix, p) for prefix, p in best if p.keys.header in headers]
            if len(best) == 1:
                prefix, policy = best[0]
                return policy, prefix
        # The path is not repeated: it may hold personal data (an email, a phone number).
        raise GatewayError(404, "not_found", "No provider policy serves this path.", reason="no_policy")

    def _dialect_for(self, ctx: RequestContext, path: str, headers: dict[str, str]) -> None:
        """For a refused request target: the policy whose dialect words the 400 (never used to forward)."""
        mounts = self.policies.mounts
        candidates = [(p, policy) for p, policy in mounts if not p or path == p or path.startswith(p + "/")]
        with suppress(GatewayError):
            ctx.policy, _ = self._unmatched(candidates, headers, path)


def _too_large() -> GatewayError:
    return GatewayError(431, "headers_too_large", "The request headers are too many or too large.")


def _first_values(ctx: RequestContext, raw_headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], int]:
    """Headers by name, first value wins; names given more than once go to ``ctx.duplicate_headers``."""
    headers: dict[str, str] = {}
    duplicates: set[str] = set()
    size = 0
    for raw_name, raw_value in raw_headers:
        size += len(raw_name) + len(raw_value)
        name = raw_name.decode("latin-1").lower()
        if name in headers:
            duplicates.add(name)
        else:
            headers[name] = raw_value.decode("latin-1")
    ctx.duplicate_headers = frozenset(duplicates)
    return headers, size


def _exact_routes(policies: PolicySet) -> dict[tuple[str, str], tuple[Policy, Route, str]]:
    """(method, full path) → (policy, route, prefix) for routes without parameters: one dict lookup
    for the common case. A path that a templated route of an earlier (longer) mount also matches is
    left out, so the table never changes which route wins."""
    table: dict[tuple[str, str], tuple[Policy, Route, str]] = {}
    for index, (prefix, policy) in enumerate(policies.mounts):
        for route in policy.route_list:
            if route.path.names:
                continue
            full = (prefix + route.path.text).rstrip("/") or "/"
            key = (route.method, full)
            if key in table:
                continue
            earlier = policies.mounts[:index]
            shadowed = any(
                (not p or full == p or full.startswith(p + "/")) and other.match(route.method, full[len(p):] or "/")
                for p, other in earlier
            )
            if not shadowed:
                table[key] = (policy, route, prefix)
    return table
