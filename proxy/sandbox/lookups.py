"""Validate-only with a live key: Blueticked's own data, read back with read-only GETs.

``test_mode: true`` works with either key type (Blueticked TM ✅). With a live key there is no
workspace: the contact and the template live at Blueticked, so the checks of
:mod:`proxy.sandbox.checks` run on what the provider returns for two lookups (the policy's
``sandbox.live_lookups`` paths), made with the caller's own credential (an issued live key's provider
credential, or the pass-through key itself).

Why here and not through :mod:`proxy.forward`: forwarding is the path for requests a client wrote,
and its re-check (:func:`proxy.verdict.may_reach_provider`) refuses every test request by design;
opening it to these would weaken the one rule for everyone. These lookups are the gateway's own
calls, like key verification, so they use the verifier's client (``components.verify_client``:
no environment proxies, no redirects, its own timeout), and the method is fixed in this module:
``GET``, never a mutation, whatever the policy says.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson
import structlog

from proxy.context import RequestContext
from proxy.errors import GatewayError
from proxy.policy.model import Policy
from proxy.sandbox import checks, shapes
from proxy.sandbox.parts import Answer
from proxy.sandbox.spec import SandboxSpec

log = structlog.get_logger("proxy.sandbox")


def _unreachable(what: str) -> GatewayError:
    return GatewayError(502, "upstream_unreachable",
                        f"Could not look up the {what} at the provider; nothing was sent. Retry later.",
                        outcome="not_sent", reason="lookup_failed")


class LiveLookups:
    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def validate(self, policy: Policy, ctx: RequestContext) -> Answer:
        spec = policy.sandbox
        assert spec is not None and ctx.key is not None
        if spec.lookups is None:
            raise GatewayError(404, "test_mode_unsupported",
                               "Validate-only sends with a live key are not simulated here; nothing was sent.")
        if ctx.key.kind == "issued":
            credential = ctx.key.forward_credential.reveal() if ctx.key.forward_credential is not None else None
        else:
            credential = ctx.key.presented
        if credential is None:
            raise GatewayError(503, "upstream_unreachable", f"No provider credential is configured for "
                               f"{policy.name}; nothing was sent.", outcome="not_sent", reason="no_credential")
        body = ctx.body
        channel = body["channel"]
        phone, email, identifier = checks.recipient(body)
        if phone is not None:
            path = spec.lookups.contact_by_phone.replace("{phone}", quote(phone, safe=""))
        else:
            path = spec.lookups.contact_by_email.replace("{email}", quote(str(email), safe=""))
        found = await self._get(policy, path, credential, "contact")
        contact = _first(found)
        if contact is None:
            raise spec.error("contact_not_found", identifier=identifier)
        to = checks.address(spec, channel, contact.get("phone"), contact.get("email"))
        checks.suppressed(spec, to, "on the provider's suppression list" if contact.get("suppressed") else None)
        preview = await self._preview(spec, policy, body, credential)
        address = {"email": to} if channel == "email" else {"phone": to}
        return spec.statuses["validated"], shapes.validated(spec, channel, address, contact.get("id"),
                                                            body.get("template_id"), preview)

    async def _preview(self, spec: SandboxSpec, policy: Policy, body: dict[str, Any], credential: str) -> str:
        if "template_id" not in body:
            return checks.free_text_preview(spec, body)
        assert spec.lookups is not None
        template_id = str(body["template_id"])
        path = spec.lookups.template.replace("{id}", quote(template_id, safe=""))
        found = await self._get(policy, path, credential, "template")
        template = _unwrap(found)
        if template is None:
            raise spec.error("template_not_found", id=template_id)
        return checks.template_preview(spec, body, {**template, "id": template.get("id", template_id)})

    async def _get(self, policy: Policy, path: str, credential: str, what: str) -> Any:
        """The JSON the provider answers to ``GET path`` (None for a 404); raises on anything else."""
        value = f"Bearer {credential}" if policy.keys.scheme == "bearer" else credential
        try:
            response = await self.client.get(policy.base_url + path, headers={policy.keys.header: value,
                                                                               "accept": "application/json"},
                                             timeout=self.timeout)
        except httpx.HTTPError as exc:
            log.warning("sandbox_lookup_failed", policy=policy.name, what=what, error=type(exc).__name__)
            raise _unreachable(what) from exc
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise GatewayError(401, "unauthorized", "The provider refused this API key.", reason="lookup_refused")
        if not 200 <= response.status_code < 300:
            log.warning("sandbox_lookup_failed", policy=policy.name, what=what, upstream_status=response.status_code)
            raise _unreachable(what)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise _unreachable(what) from exc


def _unwrap(doc: Any) -> dict[str, Any] | None:
    """An object, whether bare or wrapped in ``{"data": {...}}`` (❓ Blueticked's success envelope)."""
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc = doc["data"]
    return doc if isinstance(doc, dict) and doc else None


def _first(doc: Any) -> dict[str, Any] | None:
    """The first object of a list page (``{"data": [...]}``, ✅ CO), or a bare object."""
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        items = doc["data"]
        return items[0] if items and isinstance(items[0], dict) else None
    return _unwrap(doc)
