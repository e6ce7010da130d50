"""A provider's own subscription routes (Blueticked's, inferred): the same store, checks and delivery."""

from __future__ import annotations

import pytest

from proxy.errors import GatewayError
from proxy.webhooks.provider import ProviderRoutes
from tests.support.receiver import Receiver
from tests.webhooks.harness import Harness, blueticked_valid


async def test_create_list_get_delete_through_the_provider_route(hooks: Harness, recv: Receiver) -> None:
    routes = ProviderRoutes(hooks.webhooks)
    status, created = await routes.handle("webhooks.create", hooks.workspace, "sent",
                                          {"url": recv.url, "events": ["message.sent"]}, {})
    assert status == 201 and created["object"] == "webhook" and created["secret"].startswith("whsec_")
    status, page = await routes.handle("webhooks.list", hooks.workspace, "sent", {}, {})
    assert [w["id"] for w in page["data"]] == [created["id"]] and "secret" not in page["data"][0]
    assert page["has_more"] is False
    assert (await routes.handle("webhooks.get", hooks.workspace, "sent", {}, {"id": created["id"]}))[0] == 200
    hooks.emit("message.sent")
    [delivery] = await recv.until(1)
    assert blueticked_valid(delivery, created["secret"])
    with pytest.raises(GatewayError) as other:
        await routes.handle("webhooks.get", "sent/key_other", "sent", {}, {"id": created["id"]})
    assert other.value.status == 404
    status, deleted = await routes.handle("webhooks.delete", hooks.workspace, "sent", {}, {"id": created["id"]})
    assert (status, deleted["deleted"]) == (200, True)
    assert hooks.webhooks.subscriptions.listed(hooks.workspace) == []


async def test_the_provider_route_refuses_what_the_api_refuses(hooks: Harness) -> None:
    hooks.webhooks.guard.allow = ()
    with pytest.raises(GatewayError) as refused:
        await ProviderRoutes(hooks.webhooks).handle("webhooks.create", hooks.workspace, "sent",
                                                    {"url": "http://169.254.169.254/"}, {})
    assert (refused.value.status, refused.value.code, refused.value.items[0].field) == (400, "validation_error", "url")
