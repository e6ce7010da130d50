"""The lifecycle in real time, under load, and across a ``kill -9``, through the real server.

* At the default 5 s step, each transition happens 5 s ± 250 ms after the previous one.
* 1,000 sends in flight at a 1 s step: every transition happens exactly once (history, events);
  lateness p50/p99 (the gateway's clock when a step ran, minus when it was due) is printed.
* ``kill -9`` in the middle of 200 lifecycles, restart on the same state directory: none lost, none
  repeated, the final states all correct, and the steps that fell due while stopped ran at start, in
  order, stamped with the time each was due.

What happened is read from the gateway's store, read-only (tests/support/sandbox.py).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.sandbox.conftest import PROVIDER_CREDENTIAL, BluKeys
from tests.support.sandbox import API, BluetickedStandIn, SandboxClient, query
from tests.support.servers import POLICIES, Gateway

pytestmark = pytest.mark.slow
NUMBERS = ("+27800000001", "+27800000002", "+27800000003", "+27821234567")
EXPECTED = {  # history of each outbound message, and the events it emits (the reply's own one apart)
    "+27800000002": (["queued", "failed"], ["message.failed"]),
    "+27800000003": (["queued", "sent", "delivered", "read"], ["message.sent", "message.delivered", "message.read"]),
}
DELIVERS = (["queued", "sent", "delivered", "read"], ["message.sent", "message.delivered", "message.read"])


def test_each_transition_comes_five_seconds_after_the_last(
    blu_http: httpx.Client, blu_keys: BluKeys, standin: BluetickedStandIn
) -> None:
    standin.clear()
    bt = SandboxClient(blu_http, blu_keys.other)
    bt.reset()
    for phone in ("+27800000001", "+27800000002"):
        bt.contact(phone)
    sent = time.monotonic()
    ids = [bt.ok("POST", "/v1/messages", {"channel": "sms", "to": {"phone": phone}, "body": "hi"})["id"]
           for phone in ("+27800000001", "+27800000002")]
    seen: dict[tuple[str, str], float] = {}
    deadline = sent + 17
    while time.monotonic() < deadline and (ids[0], "read") not in seen:
        for message_id in ids:
            status = bt.ok("GET", f"/v1/messages/{message_id}")["status"]
            seen.setdefault((message_id, status), time.monotonic() - sent)
        time.sleep(0.02)
    walk = [seen.get((ids[0], s)) for s in ("sent", "delivered", "read")]
    assert None not in walk, seen
    gaps = [b - a for a, b in zip([0.0, *walk], walk, strict=False)]  # type: ignore[operator]
    print(f"\nreal-time transitions after the send: {[round(t, 3) for t in walk]} s; "
          f"gaps {[round(g, 3) for g in gaps]}")
    assert all(4.75 <= gap <= 5.25 for gap in gaps), gaps
    assert 4.75 <= seen[(ids[1], "failed")] <= 5.25, seen
    metrics = blu_http.get("/metrics").text  # steps run in real time feed the scheduler's lateness hook
    assert 'testmode_proxy_scheduler_lateness_seconds_count{kind="sandbox.message_step"}' in metrics
    assert standin.records() == []  # an issued key is never shown to the provider


# ------------------------------------------------------------------------------ at a 1 s step

@pytest.fixture(scope="module")
def fast_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policies/ with Blueticked's lifecycle step at 1 s."""
    copy = tmp_path_factory.mktemp("policies-1s")
    for file in POLICIES.glob("*.yaml"):
        shutil.copy(file, copy / file.name)
    text, count = re.subn(r"(?m)^(\s+step_seconds:) 5$", r"\1 1", (copy / "blueticked.yaml").read_text())
    assert count == 1
    (copy / "blueticked.yaml").write_text(text)
    return copy


def start(standin: BluetickedStandIn, keys: BluKeys, policies: Path, state: Path) -> Gateway:
    return Gateway(upstream=standin.url, keys_file=keys.file, policies=policies,
                   env={"TESTMODE_PROXY_CREDENTIAL_BLUETICKED": PROVIDER_CREDENTIAL,
                        "TESTMODE_PROXY_STATE_DIR": str(state), "TESTMODE_PROXY_LOG_LEVEL": "warning"})


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


async def send_many(url: str, key: str, count: int, concurrency: int = 32) -> list[tuple[str, str]]:
    """``count`` sends spread over NUMBERS (contacts first); (message id, phone) of each."""
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url + API, headers=headers, timeout=60, trust_env=False,
                                 limits=httpx.Limits(max_connections=concurrency)) as http:
        for phone in NUMBERS:
            assert (await http.post("/v1/contacts", json={"phone": phone})).status_code in (200, 201)
        slots = asyncio.Semaphore(concurrency)

        async def one(n: int) -> tuple[str, str]:
            phone = NUMBERS[n % len(NUMBERS)]
            async with slots:
                response = await http.post("/v1/messages", json={"channel": "sms", "to": {"phone": phone},
                                                                  "body": f"message {n}"})
            assert response.status_code == 202, response.text
            return response.json()["id"], phone

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def settled(state: Path, sent: list[tuple[str, str]], within: float) -> None:
    """Wait until every lifecycle has ended (each reply number's reply included)."""
    transitions = sum(len(EXPECTED.get(phone, DELIVERS)[0]) - 1 for _, phone in sent)
    replies = sum(1 for _, phone in sent if phone == "+27800000003")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        [(count,)] = query(state, "SELECT COUNT(*) FROM sandbox_message_events")
        [(inbound,)] = query(state, "SELECT COUNT(*) FROM sandbox_messages WHERE direction = 'inbound'")
        if count >= transitions and inbound >= replies:
            time.sleep(0.5)  # anything more would be a repeat: give it the chance to show
            return
        time.sleep(0.1)
    raise AssertionError(f"lifecycles not finished within {within}s: {count} of {transitions} transitions")


def check_exactly_once(state: Path, sent: list[tuple[str, str]], step: float) -> list[float]:
    """Every message's history and events are exactly as expected, in order, each transition stamped
    ``step`` after the last; returns the lateness of every transition (ran_at - at)."""
    history: dict[str, list[tuple[str, float, float]]] = {}
    for message, direction, created in query(state, "SELECT id, direction, created_at FROM sandbox_messages"):
        history[message] = [("queued" if direction == "outbound" else "received", created, created)]
    for message, status, at, ran_at in query(state, "SELECT message, status, at, ran_at FROM sandbox_message_events "
                                                     "ORDER BY seq"):
        history[message].append((status, at, ran_at))
    events: dict[str, list[str]] = {}
    for subject, type_ in query(state, "SELECT subject, type FROM outbox WHERE type LIKE 'message.%' ORDER BY seq"):
        events.setdefault(subject, []).append(type_)
    replies = {row[0]: row[1] for row in query(state, "SELECT in_reply_to, id FROM sandbox_messages "
                                                      "WHERE direction = 'inbound'")}
    lateness = []
    for message, phone in sent:
        statuses, types = EXPECTED.get(phone, DELIVERS)
        walk = history[message]
        assert [s for s, _, _ in walk] == statuses, (phone, walk)
        assert [round(b[1] - a[1], 6) for a, b in itertools.pairwise(walk)] == [step] * (len(walk) - 1)
        assert events.get(message) == types, (phone, events.get(message))
        lateness += [ran - at for _, at, ran in walk[1:]]
        if phone == "+27800000003":
            assert [s for s, _, _ in history[replies[message]]] == ["received"]
            assert events[replies[message]] == ["message.received"]
            assert history[replies[message]][0][1] == walk[-1][1] + step
    assert len(replies) == sum(1 for _, phone in sent if phone == "+27800000003")
    return lateness


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


async def test_a_thousand_sends_in_flight_transition_exactly_once(
    standin: BluetickedStandIn, blu_keys: BluKeys, fast_policies: Path, state_dir: Path
) -> None:
    gw = start(standin, blu_keys, fast_policies, state_dir)
    try:
        started = time.monotonic()
        sent = await send_many(gw.url, blu_keys.test, 1000)
        took = time.monotonic() - started
        settled(state_dir, sent, within=30)
    finally:
        gw.stop()
    lateness = check_exactly_once(state_dir, sent, step=1.0)
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    print(f"\n1,000 sends in {took:.2f} s; {len(lateness)} transitions, lateness p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {max(lateness) * 1000:.1f} ms")
    assert p99 < 0.5, (p50, p99)  # well inside the step: no transition ever waits for the next one's time


async def test_kill_9_mid_lifecycles_loses_and_repeats_nothing(
    standin: BluetickedStandIn, blu_keys: BluKeys, fast_policies: Path, state_dir: Path
) -> None:
    gw = start(standin, blu_keys, fast_policies, state_dir)
    try:
        sent = await send_many(gw.url, blu_keys.other, 200)
        await asyncio.sleep(1.5)  # some lifecycles one or two steps in
        os.kill(gw.process.pid, signal.SIGKILL)
        gw.process.wait()
    finally:
        gw.stop()
    [(before,)] = query(state_dir, "SELECT COUNT(*) FROM sandbox_message_events")
    [(due,)] = query(state_dir, "SELECT COUNT(*) FROM schedule")
    assert before < 500 and due > 0, "the kill came after the lifecycles ended; nothing was tested"
    await asyncio.sleep(2.0)  # steps fall due while the gateway is down
    gw = start(standin, blu_keys, fast_policies, state_dir)
    try:
        settled(state_dir, sent, within=30)
    finally:
        gw.stop()
    lateness = check_exactly_once(state_dir, sent, step=1.0)
    print(f"\nkill -9 with {before} transitions made and {due} steps due; after restart all "
          f"{len(lateness)} transitions happened once, the longest {max(lateness):.2f} s late (the outage)")
    assert max(lateness) > 1.0  # some really were caught up at start
    assert standin.records() == [] or all(r["method"] == "GET" for r in standin.records())
