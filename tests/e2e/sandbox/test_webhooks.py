"""Blueticked's webhook routes for a sandbox key, and the sandbox's events delivered as Blueticked signs
them (``x-blueticked-signature: sha256=<hex HMAC-SHA256 of the raw body>``), through the real server."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator

import orjson
import pytest

from tests.support.receiver import Receiver, receiver
from tests.support.sandbox import BluetickedStandIn, SandboxClient


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def test_a_subscription_made_through_v1_webhooks_receives_the_failed_event_signed_as_blueticked_signs(
    fresh: Callable[[], SandboxClient], recv: Receiver, standin: BluetickedStandIn
) -> None:
    bt = fresh()
    created = bt.call("POST", "/v1/webhooks", {"url": recv.url, "events": ["message.failed"]})
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["object"] == "webhook" and sub["secret"]
    assert [w["id"] for w in bt.ok("GET", "/v1/webhooks")["data"]] == [sub["id"]]
    assert "secret" not in bt.ok("GET", f"/v1/webhooks/{sub['id']}")
    standin.clear()
    bt.contact("+27800000002")
    msg = bt.ok("POST", "/v1/messages", {"channel": "sms", "to": {"phone": "+27800000002"}, "body": "hi"})
    bt.advance(5)
    [delivery] = recv.wait_for(1)
    payload = orjson.loads(delivery.body)
    assert (payload["event"], payload["test"], payload["data"]["id"]) == ("message.failed", True, msg["id"])
    assert delivery.headers["x-blueticked-event"] == "message.failed"
    expected = "sha256=" + hmac.new(sub["secret"].encode(), delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery.headers["x-blueticked-signature"], expected)
    [event] = bt.events("message.failed")
    assert event["payload"] == payload  # the outbox's bytes, as delivered
    removed = bt.call("DELETE", f"/v1/webhooks/{sub['id']}")
    assert removed.status_code == 200 and removed.json()["deleted"] is True
    assert standin.records() == []  # nothing of this reached Blueticked
