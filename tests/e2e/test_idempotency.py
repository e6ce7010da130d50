"""Idempotency-Key through the real server, in front of the recording stand-in provider (issue 13).

Live: the provider receives each keyed request at most once — under 50 concurrent duplicates, across a
restart and a ``kill -9``, when it never answers — and every retry gets the first answer byte for byte.
Test mode: a replay carries the first answer's ids, timestamps and request id. The official clients:
``sentdm`` with ``idempotency_key=`` (its own retries on 429 and on the in-flight 409) and SendGrid's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]
from sendgrid.helpers.mail import Mail  # type: ignore[import-untyped]
from sent_dm import Sent

from proxy.stages.idempotency import derived_key
from tests.conftest import PASSTHROUGH_LIVE, PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import error, simulated
from tests.support.servers import Gateway, Provider

SEND = {"to": ["+15555550100"], "text": "Your code is 123456"}
SENT_202 = {"success": True, "data": {"status": "QUEUED", "recipients": [
    {"to": "+15555550100", "message_id": "msg_standin_1", "channel": "sms", "body": "hi"}]},
    "error": None, "meta": {"request_id": "req_live_standin_202", "timestamp": "2024-01-15T10:30:00Z",
                            "version": "v3"}}


def keyed(api_key: str, key: str) -> dict[str, str]:
    return {"x-api-key": api_key, "Idempotency-Key": key}


def sends(recorder: Provider, path: str = "/v3/messages") -> list[dict[str, Any]]:
    return [r for r in recorder.records() if r["path"] == path]


def header(record: dict[str, Any], name: str) -> str | None:
    return dict(record["headers"]).get(name)


@pytest.fixture
def state_gateway(provider: Provider, keys: Keys, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Settings for gateways that share one state directory (restarts); each test stops what it starts."""
    env = {"TESTMODE_PROXY_STATE_DIR": str(tmp_path / "state"), "TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL}
    started: list[Gateway] = []

    def start(**extra: str) -> Gateway:
        gw = Gateway(upstream=provider.url, keys_file=keys.file, env={**env, **extra},
                     log_file=tmp_path / f"gateway{len(started)}.log")
        started.append(gw)
        return gw

    yield {"start": start, "state": tmp_path / "state"}
    for gw in started:
        gw.stop()


# ---------------------------------------------------------------------------------------- concurrency


async def test_fifty_concurrent_duplicates_reach_the_provider_once(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    recorder.configure(script=[{"delay": 0.5}])  # the first one is slow: the others arrive meanwhile

    async def one(http: httpx.AsyncClient, i: int) -> httpx.Response:
        await asyncio.sleep(i * 0.02)  # spread over 1 s: some arrive in flight, some after completion
        return await http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "concurrent-50"))

    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15, trust_env=False, limits=limits) as http:
        responses = await asyncio.gather(*(one(http, i) for i in range(50)))
    assert len(sends(recorder)) == 1
    [first] = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert first.json()["data"]["echo"]["path"] == "/v3/messages"  # the provider's own answer
    conflicts = [r for r in responses if r.status_code == 409]
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(conflicts) + len(replays) == 49 and conflicts and replays
    assert all(r.json()["error"]["code"] == "IDEMPOTENCY_001" and r.headers["retry-after"] == "1"
               for r in conflicts)
    assert all((r.status_code, r.content, r.headers["x-request-id"]) ==
               (201, first.content, first.headers["x-request-id"]) for r in replays)


# ---------------------------------------------------------------------------------------- restarts


def test_replays_survive_a_restart_and_kill_9_right_after_the_answer(
    state_gateway: dict[str, Any], keys: Keys, recorder: Provider
) -> None:
    gw = state_gateway["start"]()
    test_body = {"test_mode": True, "phone_number": "+1234567890", "template_id": "welcome"}
    with httpx.Client(base_url=gw.url, timeout=15, trust_env=False) as http:
        live = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "restart-live"))
        test = http.post("/v3/messages", json=test_body, headers=keyed(keys.sent_live, "restart-test"))
    gw.kill()  # acknowledged answers must already be on disk
    assert live.status_code == 201 and len(sends(recorder)) == 1
    simulated(test, 201)
    for restarted in range(2):  # after kill -9, then after a clean stop
        gw = state_gateway["start"]()
        with httpx.Client(base_url=gw.url, timeout=15, trust_env=False) as http:
            live_again = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "restart-live"))
            test_again = http.post("/v3/messages", json=test_body, headers=keyed(keys.sent_live, "restart-test"))
        gw.stop()
        for first, again in ((live, live_again), (test, test_again)):
            assert (again.status_code, again.content) == (first.status_code, first.content), restarted
            assert again.headers["x-request-id"] == first.headers["x-request-id"]
            assert again.headers["idempotent-replayed"] == "true"
        assert test_again.headers["x-test-mode"] == "true"
    assert len(sends(recorder)) == 1


def test_kill_9_mid_forward_answers_unknown_on_retry_and_never_sends_again(
    state_gateway: dict[str, Any], keys: Keys, recorder: Provider
) -> None:
    recorder.configure(script=[{"hang": True}])
    gw = state_gateway["start"]()
    outcome: list[BaseException | httpx.Response] = []

    def first_attempt() -> None:
        try:
            outcome.append(httpx.post(gw.url + "/v3/messages", json=SEND, timeout=30,
                                      headers=keyed(keys.sent_live, "killed-mid-forward")))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first_attempt)
    thread.start()
    deadline = time.monotonic() + 10
    while not sends(recorder) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sends(recorder)) == 1  # the provider has it, and may act on it
    gw.kill()
    thread.join(10)
    assert isinstance(outcome[0], httpx.HTTPError)  # the client never got an answer
    gw = state_gateway["start"]()
    with httpx.Client(base_url=gw.url, timeout=15, trust_env=False) as http:
        retry = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "killed-mid-forward"))
        again = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "killed-mid-forward"))
    err = error(retry, 502, "GATEWAY_006")
    assert err["outcome"] == "unknown" and retry.headers["x-should-retry"] == "false"
    assert again.content == retry.content and again.headers["idempotent-replayed"] == "true"
    assert len(sends(recorder)) == 1


# ---------------------------------------------------------------------------------------- failures


def test_a_provider_that_never_answers_is_504_unknown_replayed(
    impatient_gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    recorder.configure(script=[{"hang": True}])
    with httpx.Client(base_url=impatient_gateway.url, timeout=15, trust_env=False) as http:
        first = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "never-answered"))
        retry = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "never-answered"))
    assert error(first, 504, "GATEWAY_002")["outcome"] == "unknown"
    assert (retry.status_code, retry.content) == (504, first.content)
    assert retry.headers["idempotent-replayed"] == "true" and retry.headers["x-should-retry"] == "false"
    assert len(sends(recorder)) == 1


def test_a_refused_provider_releases_the_key(dead_gateway: Gateway, keys: Keys) -> None:
    with httpx.Client(base_url=dead_gateway.url, timeout=15, trust_env=False) as http:
        responses = [http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "refused")) for _ in "ab"]
    for response in responses:  # never replayed: the provider never had it, so a retry may run
        assert error(response, 502, "GATEWAY_001")["outcome"] == "not_sent"
        assert "idempotent-replayed" not in response.headers


def test_a_body_cut_mid_stream_becomes_a_clean_recorded_502(gateway: Gateway, keys: Keys,
                                                           recorder: Provider) -> None:
    """Without a key the client sees a broken response (test_forwarding.py); with one, the answer is
    buffered to be recorded, so the gateway can still say what happened, and says it again on retry."""
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as http:
        first = http.post("/__reset_big", json=SEND, headers=keyed(keys.sent_live, "cut-mid-body"))
        retry = http.post("/__reset_big", json=SEND, headers=keyed(keys.sent_live, "cut-mid-body"))
    assert first.status_code == 502 and first.json()["error"]["outcome"] == "unknown"
    assert retry.content == first.content and len(recorder.records()) == 1


def test_the_key_for_another_request_is_422_and_a_malformed_key_400(client: httpx.Client, keys: Keys,
                                                                     recorder: Provider) -> None:
    assert client.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "reused")).status_code == 201
    other = client.post("/v3/messages", json={**SEND, "text": "another"}, headers=keyed(keys.sent_live, "reused"))
    error(other, 422, "IDEMPOTENCY_002")
    assert other.headers["x-should-retry"] == "false"
    malformed = client.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "not a key!"))
    assert error(malformed, 400, "VALIDATION_007")["details"] == {
        "Idempotency-Key": ["The Idempotency-Key header must be 1-255 characters of A-Z, a-z, 0-9, '_' and '-'."]}
    assert len(sends(recorder)) == 1


# ---------------------------------------------------------------------------------------- test mode, retention


def test_a_test_mode_replay_keeps_its_ids_timestamps_and_request_id(client: httpx.Client, keys: Keys,
                                                                    recorder: Provider) -> None:
    body = {"sandbox": True, **SEND}
    first = client.post("/v3/messages", json=body, headers=keyed(keys.sent_test, "seed-combo"))
    time.sleep(1.05)  # a fresh answer would carry another second
    again = client.post("/v3/messages", json=body, headers=keyed(keys.sent_test, "seed-combo"))
    data = simulated(again, 202)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert again.json()["meta"]["request_id"] == again.headers["x-request-id"] == first.headers["x-request-id"]
    assert data["recipients"][0]["message_id"] == first.json()["data"]["recipients"][0]["message_id"]
    assert recorder.records() == []


def test_an_expired_key_is_processed_anew_and_purged_in_real_time(
    state_gateway: dict[str, Any], keys: Keys, recorder: Provider
) -> None:
    gw = state_gateway["start"](TESTMODE_PROXY_IDEMPOTENCY_RETENTION="1")
    with httpx.Client(base_url=gw.url, timeout=15, trust_env=False) as http:
        first = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "short-lived"))
        replay = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "short-lived"))
        time.sleep(1.2)
        anew = http.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "short-lived"))
    assert replay.headers["idempotent-replayed"] == "true" and first.status_code == anew.status_code == 201
    assert "idempotent-replayed" not in anew.headers and len(sends(recorder)) == 2
    db = sqlite3.connect(f"file:{state_gateway['state'] / 'state.db'}?mode=ro", uri=True)
    deadline = time.monotonic() + 8  # expires 1 s after completion; the purge runs every second
    while db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0] == 0
    db.close()


# ---------------------------------------------------------------------------------------- the header upstream


def test_sent_receives_the_key_untouched_behind_its_own_key_and_derived_behind_an_issued_one(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    client.post("/v3/messages", json=SEND, headers=keyed(PASSTHROUGH_LIVE, "upstream-key"))
    client.post("/v3/messages", json=SEND, headers=keyed(keys.sent_live, "upstream-key"))
    own, issued = sends(recorder)
    assert header(own, "idempotency-key") == "upstream-key"
    # Every issued key reaches Sent as one account: equal keys of two callers must not meet there.
    assert header(issued, "idempotency-key") == derived_key(keys.key_id(keys.sent_live), "upstream-key")


# ---------------------------------------------------------------------------------------- official clients


def test_sentdm_idempotency_key_through_429_then_202(gateway: Gateway, keys: Keys, recorder: Provider) -> None:
    """The README's rule: a 429 means "not processed", so the gateway keeps nothing and the client's own
    retry (same key) reaches the provider; its 202 is then what every later retry gets."""
    recorder.configure(script=[{"status": 429, "headers": {"retry-after-ms": "10"},
                                "body": {"success": False, "data": None, "error": {"code": "RATE_001",
                                                                                   "message": "slow down"}}},
                               {"status": 202, "body": SENT_202}])
    with Sent(api_key=keys.sent_live, base_url=gateway.url, max_retries=2) as sent:
        response = sent.messages.send(to=["+15555550100"], text="hi", idempotency_key="sdk-429")
        again = sent.messages.send(to=["+15555550100"], text="hi", idempotency_key="sdk-429")
    assert response.data is not None and response.data.recipients is not None
    assert response.data.recipients[0].message_id == "msg_standin_1"
    assert again == response
    attempts = sends(recorder)
    assert len(attempts) == 2  # the 429, then the 202; the third call was a replay
    expected = derived_key(keys.key_id(keys.sent_live), "sdk-429")
    assert [header(r, "idempotency-key") for r in attempts] == [expected, expected]


def test_sentdm_retries_the_in_flight_409_and_gets_the_first_answer(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    recorder.configure(script=[{"delay": 0.8, "status": 202, "body": SENT_202}])
    results: list[Any] = []

    def call() -> None:
        with Sent(api_key=keys.sent_live, base_url=gateway.url, max_retries=2) as sent:
            results.append(sent.messages.send(to=["+15555550100"], text="hi", idempotency_key="sdk-409"))

    first = threading.Thread(target=call)
    first.start()
    while not sends(recorder):
        time.sleep(0.02)
    call()  # 409 (x-should-retry: true, Retry-After: 1) → the client waits and retries → the replay
    first.join(10)
    assert len(results) == 2 and results[0] == results[1]
    assert len(sends(recorder)) == 1


def test_sendgrid_client_sends_the_same_keyed_mail_once(gateway: Gateway, keys: Keys, recorder: Provider) -> None:
    mail = Mail(from_email="sender@example.com", to_emails="recipient@example.com", subject="Receipt",
                plain_text_content="Thanks!")
    client = SendGridAPIClient(keys.sendgrid_live, host=gateway.url)
    responses = [client.client.mail.send.post(request_body=mail.get(),
                                              request_headers={"Idempotency-Key": "receipt-7"}) for _ in "ab"]
    assert [r.status_code for r in responses] == [202, 202]
    ids = [r.headers["X-Message-Id"] for r in responses]
    assert ids[0] == ids[1] and ids[0].startswith("standin-")
    assert responses[1].headers["Idempotent-Replayed"] == "true"
    [record] = sends(recorder, "/v3/mail/send")
    assert json.loads(base64.b64decode(record["body"]))["subject"] == "Receipt"
    assert header(record, "idempotency-key") is None  # SendGrid has no idempotency: the key stays here
