"""Subscriptions through a provider's own API, where its policy routes them here (a sandbox key only).

Blueticked's routes are **inferred** (≈): its docs describe subscriptions made in the dashboard
(Developers → Webhooks) and its SDK's ``bt.webhooks`` shows only local verification, but the OpenAPI
description lists webhooks among API features; ``POST|GET /v1/webhooks``, ``GET|DELETE
/v1/webhooks/{id}`` follow the ``/v1/<resource>`` pattern of its one confirmed route
(``shared/reference/blueticked.md`` §2, §7.6). The object's shape is likewise a choice: the gateway's
own subscription fields, the secret only in the answer that creates it, lists paginated as Blueticked's
other lists are (``data``, ``next_cursor``, ``has_more``).

The sandbox stage maps a route to an operation (``sandbox.operations``: ``webhooks.create``,
``webhooks.list``, ``webhooks.get``, ``webhooks.delete``) and awaits :meth:`ProviderRoutes.handle`
with the request's workspace; errors are raised as :class:`~proxy.errors.GatewayError` and rendered in
the provider's dialect like every other sandbox answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.errors import GatewayError
from proxy.webhooks import changes
from proxy.webhooks.delivery import Webhooks
from proxy.webhooks.subscriptions import Subscription

OPERATIONS = ("webhooks.create", "webhooks.list", "webhooks.get", "webhooks.delete")


def _shape(sub: Subscription, *, with_secret: bool = False) -> dict[str, Any]:
    public = sub.public(with_secret=with_secret)
    keep = ("id", "url", "events", "status", "description", "created_at", "secret")
    return {"object": "webhook", **{name: public[name] for name in keep if name in public}}


class ProviderRoutes:
    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks

    async def handle(self, operation: str, workspace: str, policy: str, body: Any,
                     path: Mapping[str, str]) -> tuple[int, Any]:
        """``(status, document)`` for one of :data:`OPERATIONS` in ``workspace``."""
        hooks = self.webhooks
        now = hooks.schedule.now(hooks.timeline(workspace))
        if operation == "webhooks.create":
            sub = await changes.create(hooks.subscriptions, hooks.guard, hooks.spec(policy), body,
                                       workspace=workspace, policy=policy, now=now)
            return 201, _shape(sub, with_secret=True)
        if operation == "webhooks.list":
            data = [_shape(s) for s in hooks.subscriptions.listed(workspace)]
            return 200, {"data": data, "next_cursor": None, "has_more": False}
        sub_or_none = hooks.subscriptions.get(path.get("id", ""), workspace)
        if sub_or_none is None:
            raise GatewayError(404, "not_found", "No such webhook.")
        if operation == "webhooks.get":
            return 200, _shape(sub_or_none)
        if operation == "webhooks.delete":
            hooks.log.fail_open(sub_or_none.id, "subscription removed", now)
            hooks.subscriptions.remove(sub_or_none.id)
            return 200, {"object": "webhook", "id": sub_or_none.id, "deleted": True}
        raise ValueError(f"not a webhook operation: {operation!r}")
