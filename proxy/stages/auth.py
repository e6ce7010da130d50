"""Stage 3, *auth*: who is calling. A missing or invalid key is 401 — in test mode too.

Issued keys (the registry) are recognised by digest; an issued live key is later swapped for the
policy's provider credential. Any other key must have the policy's shape (``keys.shapes``,
:mod:`proxy.keys.shapes`): a key that does not — junk, another provider's key, a key carrying an
issued-key prefix that the registry does not know — is 401 at once and never shown to any provider.
A key of the provider's own shape is a pass-through key, verified with the provider
(:mod:`proxy.keys.passthrough`) when the policy allows it.

Credential headers given twice, look-alike names and another provider's key are refused earlier, by
*route* (:mod:`proxy.keys.credentials`), once the policy is known.

Reads: ``ctx.policy``, ``ctx.headers``, the scope's client address. Writes: ``ctx.key``. Ends a
request with: 401 ``unauthorized``; 400 ``ambiguous_credentials`` (another credential header that
disagrees); 429 ``rate_limited`` (too many verifications; ``Retry-After``); 503
``key_verification_unavailable`` (the provider cannot be asked).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.context import begin
from proxy.errors import GatewayError
from proxy.keys.identity import KeyIdentity
from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.registry import KeyRegistry
from proxy.keys.shapes import read_key
from proxy.metrics import Metrics
from proxy.policy.model import Policy
from proxy.settings import Secret

log = structlog.get_logger("proxy.stages")


def _unauthorized(message: str, reason: str) -> GatewayError:
    return GatewayError(401, "unauthorized", message, reason=reason)


class Auth:
    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: KeyRegistry,
        verifiers: Mapping[str, PassthroughVerifier],
        credentials: Mapping[str, Secret],
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.registry = registry
        self.verifiers = verifiers
        self.credentials = credentials
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "auth")
        policy = ctx.policy
        assert policy is not None
        presented = self._presented(policy, ctx.headers)
        ctx.key = await self._identify(policy, presented, scope, ctx.headers)
        if logs.DEBUG:
            log.debug("key_identified", key_id=ctx.key.key_id, kind=ctx.key.kind)
        await self.app(scope, receive, send)

    @staticmethod
    def _presented(policy: Policy, headers: dict[str, str]) -> str:
        spec = policy.keys
        value = headers.get(spec.header)
        if value is None:
            raise _unauthorized(f"Missing API key: send it in the {spec.header} header.", "missing_key")
        key = read_key(spec, value)
        if key is None and spec.scheme == "bearer":
            raise _unauthorized("The authorization header must be 'Bearer <API key>'.", "malformed_key")
        if key is None:
            raise _unauthorized("Empty API key.", "missing_key")
        value = key
        if not (value.isascii() and value.isprintable()):
            # No provider issues such keys, and one cannot even be put in a verification request.
            raise _unauthorized("Malformed API key.", "malformed_key")
        for other in spec.conflicting_headers:
            other_value = headers.get(other)
            if other_value is not None and other_value.strip().removeprefix("Bearer ").strip() != value:
                raise GatewayError(
                    400, "ambiguous_credentials",
                    f"Credentials in both {spec.header} and {other} disagree; send one key only.",
                )
        return value

    async def _identify(self, policy: Policy, presented: str, scope: Scope, headers: dict[str, str]) -> KeyIdentity:
        spec = policy.keys
        entry = self.registry.lookup(presented)
        if entry is not None and entry.policy != policy.name:
            # A gateway-issued key is never shown to any provider, not even to verify it.
            raise _unauthorized("This API key was issued for another provider.", "wrong_policy_key")
        if entry is not None:
            credential = self.credentials.get(policy.name) if entry.mode == "live" else None
            return self.registry.identity(entry, presented, credential)
        shape = spec.shape.kind(presented)
        if shape is None:
            # Not this provider's key: asking the provider would make the gateway an oracle for any
            # string (security issue item 3), or show one provider another's key (item 5).
            raise _unauthorized(f"Invalid API key: {policy.name} keys look like {spec.shape.describe()}.",
                                "not_policy_shape")
        if shape == "issued":
            raise _unauthorized("Invalid API key.", "unknown_issued_key")
        verifier = self.verifiers.get(policy.name)
        if verifier is None:
            raise _unauthorized("Invalid API key.", "unknown_key")
        client = scope.get("client")
        identity = await verifier.verify(presented, client[0] if client else None, headers.get("x-forwarded-for"))
        self.metrics.key_verification(policy.name, "valid" if identity is not None else "invalid")
        if identity is None:
            raise _unauthorized("Invalid API key.", "rejected_by_provider")
        return identity
