"""Stage 2, *route*: pick the policy and route for the request.

Each policy is mounted at its ``prefixes`` (``/sent`` for a client whose base URL is
``http://gw/sent``; ``""`` for the root). A path that matches a declared route is that route's; an
undeclared path belongs to the policy with the longest matching prefix. At a prefix several
policies share, the request's key picks the policy by its shape (:mod:`proxy.policy.mounts`).
Credential headers a provider could read differently are refused here, once the policy is known
(:mod:`proxy.keys.credentials`).

Reads: scope method, path, headers. Writes: ``ctx.policy``, ``route``, ``path``, ``path_params``,
``headers``, ``duplicate_headers``. Ends a request with: 404 ``not_found`` (problem details) when no
policy is mounted at the path; 401 ``unauthorized`` / 400 ``ambiguous_credentials`` (problem details)
when no policy, or several, claim a request at a shared prefix; 400 ``ambiguous_credentials`` /
``bad_request`` for a credential header twice, a header name with ``_``, or another provider's key;
400 ``bad_request`` for a request target that is not a clean path or a method-override header, 405
``method_not_allowed`` for a method the policy does not use (:mod:`proxy.target`); 431
``headers_too_large`` past the header limits (count, total bytes; Envoy's edge defaults).
"""

from __future__ import annotations

from contextlib import suppress

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.context import RequestContext, begin
from proxy.errors import GatewayError
from proxy.keys.credentials import CredentialHeaders
from proxy.policy.model import PolicySet
from proxy.policy.mounts import Mounts
from proxy.target import clean_path, decoded_params, refuse_method_override, require_method


class RouteStage:
    def __init__(
        self, app: ASGIApp, *, policies: PolicySet, max_header_bytes: int = 16384, max_headers: int = 100
    ) -> None:
        self.app = app
        self.policies = policies
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.mounts = Mounts(policies)
        self.credentials = CredentialHeaders(policies)

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
        if (coding := headers.get("transfer-encoding")) is not None and coding.strip().lower() != "chunked":
            # RFC 9112 §6.1: a transfer coding the server does not understand is 501; the body (which
            # httptools would read as chunked) is never read.
            raise GatewayError(501, "not_implemented", "Only the 'chunked' transfer coding is accepted. "
                                                       "Nothing was sent.", reason="transfer_coding",
                               headers={"connection": "close"})  # the framing cannot be trusted: no next request
        ctx.headers = headers
        try:
            path = clean_path(scope)  # the one path routing and forwarding use (proxy/target.py)
            refuse_method_override(headers)
        except GatewayError:
            self._dialect_for(ctx, scope, headers)
            raise
        method: str = scope["method"]
        try:
            policy, ctx.route, params, prefix = self.mounts.select(method, path, headers)
        except GatewayError:
            self.credentials.check(ctx, None)  # a malformed credential header explains the refusal better
            raise
        ctx.policy, ctx.mount_prefix, ctx.path = policy, prefix, path[len(prefix):] or "/"
        self.credentials.check(ctx, policy)
        if ctx.route is None:
            require_method(policy, method)  # a declared route's method is allowed by construction
        elif params:
            ctx.path_params = decoded_params(params)
        await self.app(scope, receive, send)

    def _dialect_for(self, ctx: RequestContext, scope: Scope, headers: dict[str, str]) -> None:
        """For a refused request target: the policy whose dialect words the 400 (never used to forward)."""
        with suppress(GatewayError):
            ctx.policy = self.mounts.select(scope["method"], scope["path"], headers)[0]


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
