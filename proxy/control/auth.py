"""Who may use the control surface: a sandbox (test) key, which authorises exactly its own workspace.

The key is read as the provider's clients send it (``Authorization: Bearer …`` or the policy's own key
header) and identified like the pipeline's *auth* stage does: an issued key by its digest in the
registry, or a pass-through key with the policy's test prefix, verified read-only with the provider.
A live key is refused (403): the control surface only ever acts on simulated data.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from proxy.components import Components
from proxy.errors import GatewayError
from proxy.keys.identity import KeyIdentity, digest
from proxy.policy.model import Policy
from proxy.settings import Secret


@dataclass(frozen=True, slots=True)
class Caller:
    key: KeyIdentity
    policy: Policy
    workspace: str | None  # the workspace a registry entry binds the key to, if any


def _presented(request: Request) -> str:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(401, "unauthorized", "The authorization header must be 'Bearer <sandbox key>'.")
        return token.strip()
    for name in ("x-api-key",):
        if (value := request.headers.get(name)) is not None and value.strip():
            return value.strip()
    raise GatewayError(401, "unauthorized", "Send the workspace's sandbox key as 'Authorization: Bearer <key>'.",
                       reason="missing_key")


async def authenticate(request: Request, parts: Components) -> Caller:
    """The caller, or a 401/403 :class:`GatewayError`."""
    presented = _presented(request)
    if not (presented.isascii() and presented.isprintable()):
        raise GatewayError(401, "unauthorized", "Malformed API key.", reason="malformed_key")
    entry = parts.registry.lookup(presented)
    if entry is not None:
        policy = parts.policies.by_name(entry.policy)
        if policy is None:
            raise GatewayError(401, "unauthorized", "This key's policy is not loaded.", reason="unknown_policy")
        if entry.mode != "test":
            raise GatewayError(403, "forbidden", "The control API takes a sandbox (test) key, never a live one.",
                               reason="live_key")
        identity = parts.registry.identity(entry, presented, None)
        return Caller(identity, policy, getattr(entry, "workspace", None) or None)
    for policy in parts.policies.policies:
        if policy.key_prefix_triggers and presented.startswith(policy.key_prefix_triggers):
            verifier = parts.verifiers.get(policy.name)
            if verifier is None or not await verifier.verify(presented):
                raise GatewayError(401, "unauthorized", "Invalid API key.", reason="rejected_by_provider")
            assert policy.keys.passthrough is not None
            identity = KeyIdentity("pt_" + digest(presented)[:12], "passthrough", "test",
                                   policy.keys.passthrough.scopes, Secret(presented), presented)
            return Caller(identity, policy, None)
    raise GatewayError(403, "forbidden", "The control API takes a sandbox (test) key, never a live one.",
                       reason="live_key")
