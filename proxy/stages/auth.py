"""Stage 3, *auth*: who is calling. A missing or invalid key is 401 — in test mode too.

Issued keys (the registry) are recognised by digest; an issued live key is later swapped for the
policy's provider credential. A key carrying an issued-key prefix that the registry does not know
is 401 at once and never sent to the provider. Any other key is a pass-through key, verified with
the provider (:mod:`proxy.keys.passthrough`) when the policy allows it.

Reads: ``ctx.policy``, ``ctx.headers``. Writes: ``ctx.key``. Ends a request with: 401
``unauthorized``; 400 ``ambiguous_credentials`` (the key header twice, or another credential
header that disagrees); 503 ``key_verification_unavailable`` (the provider cannot be asked).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy import logs
from proxy.context import begin
from proxy.errors import GatewayError
from proxy.keys.identity import KeyIdentity, digest
from proxy.keys.passthrough import PassthroughVerifier
from proxy.keys.registry import KeyRegistry
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
        # Identities of verified pass-through keys (immutable; validity is re-checked every request).
        self._passthrough: dict[tuple[str, str], KeyIdentity] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = begin(scope, "auth")
        policy = ctx.policy
        assert policy is not None
        presented = self._presented(policy, ctx.headers, ctx.duplicate_headers)
        ctx.key = await self._identify(policy, presented)
        if logs.DEBUG:
            log.debug("key_identified", key_id=ctx.key.key_id, kind=ctx.key.kind)
        await self.app(scope, receive, send)

    @staticmethod
    def _presented(policy: Policy, headers: dict[str, str], duplicates: frozenset[str]) -> str:
        spec = policy.keys
        if spec.header in duplicates:
            raise GatewayError(400, "ambiguous_credentials", f"The {spec.header} header appears more than once.")
        value = headers.get(spec.header)
        if value is None:
            raise _unauthorized(f"Missing API key: send it in the {spec.header} header.", "missing_key")
        if spec.scheme == "bearer":
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("The authorization header must be 'Bearer <API key>'.", "malformed_key")
            value = token
        value = value.strip()
        if not value:
            raise _unauthorized("Empty API key.", "missing_key")
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

    async def _identify(self, policy: Policy, presented: str) -> KeyIdentity:
        spec = policy.keys
        entry = self.registry.lookup(presented)
        if entry is not None and entry.policy != policy.name:
            # A gateway-issued key is never shown to any provider, not even to verify it.
            raise _unauthorized("This API key was issued for another provider.", "wrong_policy_key")
        if entry is not None:
            credential = self.credentials.get(policy.name) if entry.mode == "live" else None
            return self.registry.identity(entry, presented, credential)
        if presented.startswith((spec.issued_live_prefix, spec.issued_test_prefix)):
            raise _unauthorized("Invalid API key.", "unknown_issued_key")
        verifier = self.verifiers.get(policy.name)
        if verifier is None:
            raise _unauthorized("Invalid API key.", "unknown_key")
        valid = await verifier.verify(presented)
        self.metrics.key_verification(policy.name, "valid" if valid else "invalid")
        if not valid:
            raise _unauthorized("Invalid API key.", "rejected_by_provider")
        assert spec.passthrough is not None
        identity = self._passthrough.get((policy.name, presented))
        if identity is None:
            if len(self._passthrough) >= 10_000:
                self._passthrough.clear()
            identity = KeyIdentity("pt_" + digest(presented)[:12], "passthrough", None, spec.passthrough.scopes,
                                   Secret(presented), presented)
            self._passthrough[(policy.name, presented)] = identity
        return identity
