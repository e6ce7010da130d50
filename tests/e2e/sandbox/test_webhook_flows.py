"""Webhooks for the sandbox's flows, through the real server (webhook delivery's acceptance): the three
magic numbers' events delivered in order per message and signed as Blueticked signs (checked here with a
few lines of hmac), a receiver that fails three times then succeeds as the workspace clock is advanced,
and 1,000 messages x 3 events, each event id exactly once."""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.support.receiver import Answer, Delivery, Receiver, receiver
from tests.support.sandbox import SandboxClient
from tests.support.webhooks import WebhookApi

DELIVERS, FAILS, REPLIES = "+27800000001", "+27800000002", "+27800000003"


def verified(delivery: Delivery, secret: str) -> bool:
    """Blueticked's check as its docs show it: HMAC-SHA256 of the raw body with the secret, lower-case hex."""
    expected = "sha256=" + hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    presented = delivery.headers.get("x-blueticked-signature", "")
    return len(presented) == len(expected) and hmac.compare_digest(presented, expected)


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
def bt(fresh: Callable[[], SandboxClient]) -> SandboxClient:
    return fresh()  # a new pass-through sandbox key: an empty, frozen workspace of its own


def send(bt: SandboxClient, phone: str, template: dict[str, Any]) -> str:
    body = {"channel": "whatsapp", "to": {"phone": phone}, "template_id": template["id"],
            "template_variables": {"1": "Sam", "2": "May 2026"}}
    message_id: str = bt.ok("POST", "/v1/messages", body, expect=202)["message_id"]
    return message_id


def test_the_three_magic_numbers_deliver_their_events_in_order_signed(bt: SandboxClient, recv: Receiver) -> None:
    sub = bt.ok("POST", "/v1/webhooks", {"url": recv.url}, expect=201)  # Blueticked's own (inferred) route
    for phone in (DELIVERS, FAILS, REPLIES):
        bt.contact(phone)
    template = bt.approved_template()
    time.sleep(0.3)
    recv.clear()  # contact and template events are not this test's subject
    sent = {phone: send(bt, phone, template) for phone in (DELIVERS, FAILS, REPLIES)}
    for _ in range(5):
        bt.advance(5)
    expected = [e for e in bt.events() if e["type"].startswith("message.")]
    recv.wait_for(len(expected))
    time.sleep(0.3)
    got = [d for d in recv.deliveries() if orjson.loads(d.body)["event"].startswith("message.")]
    assert sorted(d.event_id for d in got) == sorted(e["id"] for e in expected)  # each event exactly once
    assert all(verified(d, sub["secret"]) for d in got)
    payloads = [orjson.loads(d.body) for d in got]
    assert all(p["test"] is True for p in payloads)
    assert all(d.headers["x-blueticked-event"] == p["event"] for d, p in zip(got, payloads, strict=True))
    by_message: dict[str, list[str]] = {}
    for d, p in zip(got, payloads, strict=True):
        subject = next(e["subject"] for e in expected if e["id"] == d.event_id)
        by_message.setdefault(subject, []).append(p["event"])
    assert by_message[sent[DELIVERS]] == ["message.sent", "message.delivered", "message.read"]
    assert by_message[sent[FAILS]] == ["message.failed"]
    assert by_message[sent[REPLIES]] == ["message.sent", "message.delivered", "message.read"]
    [reply] = [m for m in by_message if m not in sent.values()]
    assert by_message[reply] == ["message.received"]


def test_a_receiver_failing_three_times_gets_it_on_the_fourth_as_the_workspace_clock_moves(
    bt: SandboxClient, recv: Receiver,
) -> None:
    api = WebhookApi(bt.http, bt.key)
    sub = api.subscribe(recv.url, events=["message.sent", "message.delivered", "message.read"])
    bt.contact(DELIVERS)
    template = bt.approved_template()
    recv.script = [Answer(500), Answer(503), Answer(500)]
    message = send(bt, DELIVERS, template)
    started = time.monotonic()
    bt.advance(5)  # message.sent: attempt 1 fails
    [event] = [e for e in bt.events("message.sent") if e["subject"] == message]
    api.wait_attempts(1, event=event["id"])
    found: list[dict[str, Any]] = []
    for step, attempts in ((5, 2), (300, 3), (1800, 4)):  # Svix's schedule, each step + at most 10 % jitter
        bt.advance(step * 1.1)
        found = api.wait_attempts(attempts, event=event["id"])
        assert len(found) == attempts
    assert [a["status"] for a in found] == [500, 503, 500, 200]
    assert time.monotonic() - started < 30  # the clock moved; nobody waited 35 minutes
    got = recv.wait_for(4)
    assert {d.event_id for d in got[:4]} == {event["id"]}
    assert all(verified(d, sub["secret"]) for d in got)


def test_a_thousand_messages_times_three_events_each_exactly_once(bt: SandboxClient, recv: Receiver) -> None:
    api = WebhookApi(bt.http, bt.key)
    secret = api.subscribe(recv.url, events=["message.sent", "message.delivered", "message.read"])["secret"]
    bt.contact(DELIVERS)
    template = bt.approved_template()
    messages = [send(bt, DELIVERS, template) for _ in range(1000)]
    started = time.time()
    bt.advance(15)  # every message: sent, delivered, read
    recv.wait_for(3000, timeout=120)
    time.sleep(0.5)
    got = recv.deliveries()
    ids = Counter(d.event_id for d in got)
    assert len(ids) == 3000 and set(ids.values()) == {1}  # every event id exactly once
    latencies = sorted(d.at - started for d in got)
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
    rate = len(got) / (max(d.at for d in got) - started)
    print(f"\nwebhooks from the sandbox: 1000 messages x 3 events, latency from the advance call p50 "
          f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, {rate:.0f} deliveries/s")
    order: dict[str, list[str]] = {}
    for d in got:
        payload = orjson.loads(d.body)
        order.setdefault(payload["data"]["id"], []).append(payload["event"])
    assert set(order) == set(messages)
    assert all(kinds == ["message.sent", "message.delivered", "message.read"] for kinds in order.values())
    assert all(verified(d, secret) for d in got[:50])
