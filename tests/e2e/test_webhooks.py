"""Webhook delivery through the real server: a CLI-made subscription, 1,000 messages x 3 events to one
receiver (each event id exactly once, in order per message; latency and rate printed), kill -9 while
delivering, replay through the API, the metrics."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import Keys
from tests.support.receiver import Answer, Receiver, receiver
from tests.support.servers import ROOT, Gateway, Provider
from tests.support.webhooks import WebhookApi, inject

pytestmark = pytest.mark.slow
LIFECYCLE = ("message.sent", "message.delivered", "message.read")


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def start(provider: Provider, keys: Keys, state: Path, log: Path | None = None) -> Gateway:
    return Gateway(upstream=provider.url, keys_file=keys.file, log_file=log,
                   env={"TESTMODE_PROXY_STATE_DIR": str(state), "TESTMODE_PROXY_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1/32"})


def test_a_subscription_made_with_the_cli_receives_what_the_gateway_delivers(
    provider: Provider, keys: Keys, tmp_path: Path, recv: Receiver,
) -> None:
    gw = start(provider, keys, tmp_path / "state")
    try:
        with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            workspace = api.subscribe(recv.url, events=["message.failed"])["workspace"]  # learn the id the API uses
            env = {"TESTMODE_PROXY_STATE_DIR": str(gw.state_dir),
                   "TESTMODE_PROXY_WEBHOOK_ALLOW_PRIVATE": "127.0.0.1/32"}
            made = subprocess.run(
                [sys.executable, "-m", "proxy.cli", "webhooks", "add", "--workspace", workspace, "--url", recv.url,
                 "--event", "message.sent"], cwd=ROOT, env=env, capture_output=True, check=True)
            created = orjson.loads(made.stdout)
            assert created["id"] in [s["id"] for s in api.call("GET", "").json()["data"]]
            [event] = inject(gw.state_dir, workspace, [("message.sent", "msg_1")])
            [delivery] = recv.wait_for(1)
    finally:
        gw.stop()
    assert delivery.event_id == event.id
    assert delivery.headers["webhook-id"] == event.id  # the sent policy has no webhooks section: Standard Webhooks
    import standardwebhooks

    assert standardwebhooks.Webhook(created["secret"]).verify(delivery.body, delivery.headers)["test"] is True


def test_a_thousand_messages_times_three_events_reach_one_receiver_exactly_once_in_order(
    provider: Provider, keys: Keys, tmp_path: Path, recv: Receiver,
) -> None:
    gw = start(provider, keys, tmp_path / "state")
    try:
        with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            sub = api.subscribe(recv.url)
            events = inject(gw.state_dir, sub["workspace"],
                            [(kind, f"msg_{n}") for n in range(1000) for kind in LIFECYCLE])
            committed = time.time()  # the 3,000 events and their deliveries are durable from here
            got = recv.wait_for(3000, timeout=120)
            time.sleep(0.5)  # anything extra would show now
            got = recv.deliveries()
            metrics = http.get("/metrics").text
    finally:
        gw.stop()
    ids = Counter(d.event_id for d in got)
    assert set(ids) == {e.id for e in events} and set(ids.values()) == {1}
    latencies = sorted(d.at - committed for d in got)
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
    rate = len(got) / (max(d.at for d in got) - committed)
    print(f"\nwebhooks e2e: 3000 deliveries, latency from commit p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"{rate:.0f} deliveries/s (events from another process: the scheduler sees them on its next look, <= 1 s)")
    order: dict[str, list[str]] = {}
    for d in got:
        order.setdefault(orjson.loads(d.body)["data"]["message_id"], []).append(orjson.loads(d.body)["event"])
    assert all(kinds == list(LIFECYCLE) for kinds in order.values())
    import standardwebhooks

    verifier = standardwebhooks.Webhook(sub["secret"])
    assert all(verifier.verify(d.body, d.headers)["id"] == d.event_id for d in got)
    assert 'testmode_proxy_webhook_deliveries_total{outcome="delivered"} 3000.0' in metrics
    assert "testmode_proxy_webhook_queue_depth 0.0" in metrics
    assert "testmode_proxy_webhook_attempt_duration_seconds_count 3000.0" in metrics


def test_kill_9_while_delivering_loses_nothing_and_a_duplicate_keeps_its_event_id(
    provider: Provider, keys: Keys, tmp_path: Path, recv: Receiver,
) -> None:
    state = tmp_path / "state"
    recv.default = Answer(200, delay=0.2)  # slow enough that deliveries are in flight when the gateway dies
    gw = start(provider, keys, state)
    with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
        sub = WebhookApi(http, keys.sent_test).subscribe(recv.url)
    events = inject(state, sub["workspace"], [(kind, f"msg_{n}") for n in range(100) for kind in LIFECYCLE])
    recv.wait_for(60, timeout=30)
    gw.process.kill()  # SIGKILL: no drain, leases held, whatever was in flight cut off
    gw.process.wait()
    before = len(recv.deliveries())
    assert before < 300, "everything arrived before the kill: the test proved nothing"
    recv.default = Answer(200)
    restarted = start(provider, keys, state)
    try:
        recv.wait_for(300, timeout=60)
        deadline = time.monotonic() + 30
        while {d.event_id for d in recv.deliveries()} != {e.id for e in events} and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        restarted.stop()
    got = recv.deliveries()
    ids = Counter(d.event_id for d in got)
    assert set(ids) == {e.id for e in events}  # 0 lost
    duplicates = {event_id: n for event_id, n in ids.items() if n > 1}
    bodies = {e.id: e.payload for e in events}
    assert all(d.body == bodies[d.event_id] for d in got)  # a duplicate is the same event, same id, same bytes
    print(f"\nwebhooks kill -9: {len(got)} deliveries of 300 events after the restart, {len(duplicates)} duplicated")


def test_replay_through_the_api_of_one_event_and_of_failures_since_a_time(
    provider: Provider, keys: Keys, tmp_path: Path, recv: Receiver,
) -> None:
    gw = start(provider, keys, tmp_path / "state")
    try:
        with httpx.Client(base_url=gw.url, trust_env=False, timeout=10) as http:
            api = WebhookApi(http, keys.sent_test)
            sub = api.subscribe(recv.url)
            [ok] = inject(gw.state_dir, sub["workspace"], [("message.sent", "msg_ok")])
            api.wait_attempts(1)
            since = time.time()
            recv.script = [Answer(410)]  # the receiver is gone: the delivery fails, the subscription is disabled
            [gone] = inject(gw.state_dir, sub["workspace"], [("message.sent", "msg_gone")])
            api.wait_attempts(2)
            assert api.call("GET", f"/{sub['id']}").json()["status"] == "disabled"
            assert api.call("PATCH", f"/{sub['id']}", {"status": "active"}).status_code == 200
            one = api.call("POST", f"/events/{ok.id}/replay")
            failed = api.call("POST", "/replay", {"since": since})
            assert (one.status_code, failed.status_code) == (202, 202), failed.text
            assert [d["event"] for d in failed.json()["data"]] == [gone.id]
            attempts = api.wait_attempts(4)
    finally:
        gw.stop()
    replays = [a for a in attempts if a["trigger"] == "replay"]
    assert sorted(a["event"] for a in replays) == sorted([ok.id, gone.id])
    assert all(a["outcome"] == "delivered" and a["status"] == 200 for a in replays)
    assert [d.event_id for d in recv.deliveries()].count(ok.id) == 2
