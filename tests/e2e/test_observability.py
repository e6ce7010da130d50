"""What an operator sees of the real server: /healthz, /readyz, /metrics, and the canonical log line."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSTHROUGH_LIVE, PASSTHROUGH_TEST, PROVIDER_CREDENTIAL, Keys
from tests.support.servers import Gateway, Provider


def _requests_total(client: httpx.Client) -> dict[tuple[str, str, str, str], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    totals: dict[tuple[str, str, str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "testmode_proxy_requests_total":
                labels = sample.labels
                totals[(labels["policy"], labels["route"], labels["mode"], labels["status_class"])] = sample.value
    return totals


def test_health_and_readiness_answer_200_json(client: httpx.Client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert health.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.headers["content-type"] == "application/json"
    # Ready or not and nothing more: no key count, no policy names (security issue #10, item 13).
    assert ready.json() == {"status": "ready"}


def test_metrics_count_requests_by_policy_route_mode_and_status_class(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    before = _requests_total(client)
    live = {"x-api-key": keys.sent_live}
    client.post("/v3/messages", headers=live, json={"test_mode": True, "to": ["+15555550100"], "text": "hi"})
    client.post("/v3/messages", headers=live, json={"test_mode": True, "to": ["+15555550100"], "text": "hi"})
    client.post("/v3/messages", headers=live, json={"to": ["+15555550100"], "text": "hi"})
    client.post("/v3/contacts", headers=live, json={"test_mode": "yes"})
    client.post("/v3/contacts", headers={"x-api-key": keys.sent_test}, json={"phone_number": "bad"})
    client.get("/v3/analytics", headers=live)  # a path no route declares
    after = _requests_total(client)

    def delta(*labels: str) -> float:
        key = (labels[0], labels[1], labels[2], labels[3])
        return after.get(key, 0) - before.get(key, 0)

    assert delta("sent", "messages.send", "test", "2xx") == 2
    assert delta("sent", "messages.send", "live", "2xx") == 1
    assert delta("sent", "contacts.create", "undecided", "4xx") == 1  # refused before test/live was decided
    assert delta("sent", "contacts.create", "test", "4xx") == 1
    assert delta("sent", "unmatched", "live", "2xx") == 1
    assert len(recorder.records()) == 2  # the live send and the live read


def _request_lines(gateway: Gateway, request_ids: set[str]) -> tuple[str, list[dict[str, Any]]]:
    """The log file and its canonical lines, once it holds those of every one of ``request_ids``."""
    deadline = time.monotonic() + 5
    while True:
        text = gateway.log()
        # Complete lines only: the gateway may be writing the last one while it is read.
        lines = [json.loads(line) for line in text.split("\n")[:-1] if line.startswith("{")]
        lines = [line for line in lines if line.get("event") == "request"]
        if request_ids <= {line.get("request_id") for line in lines} or time.monotonic() > deadline:
            return text, lines
        time.sleep(0.05)


def test_canonical_log_line_has_no_keys_and_no_whole_phone_numbers(
    gateway: Gateway, client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    phone = "+15555550123"
    invalid_key = "sk_live_not_a_real_key_7f3a9c"
    bodies: list[tuple[str, str, str, Any]] = [
        ("POST", "/v3/messages", keys.sent_live, {"test_mode": True, "to": [phone], "text": "code 123456"}),
        ("POST", "/v3/messages", keys.sent_live, {"to": [phone], "text": "code 123456"}),
        ("POST", "/v3/contacts", keys.sent_test, {"phone_number": phone}),
        ("POST", "/v3/contacts", keys.sent_contacts_only, {"phone_number": phone}),
        ("POST", "/v3/contacts", PASSTHROUGH_TEST, {"phone_number": phone}),
        ("POST", "/v3/contacts", PASSTHROUGH_LIVE, {"phone_number": phone, "sandbox": True}),
        ("POST", "/v3/contacts", invalid_key, {"phone_number": phone, "sandbox": True}),
        ("POST", "/v3/contacts", keys.sent_live, {"phone_number": phone, "sandbox": "true"}),
        ("POST", "/v3/webhooks", keys.sent_live, {"test_mode": True, "endpoint_url": "https://example.com/h"}),
        ("GET", f"/v3/lookups/{phone}?phone={phone}", keys.sent_live, None),  # a path no route declares
        ("PATCH", f"/v3/contacts/{phone}", keys.sent_live, {"test_mode": True, "opt_out": True}),
    ]
    ids = set()
    for method, path, key, body in bodies:
        response = client.request(method, path, headers={"x-api-key": key}, json=body)
        assert response.status_code < 500
        if response.headers["x-request-id"] != "req_live_standin":  # forwards carry the provider's own id
            ids.add(response.headers["x-request-id"])
    text, lines = _request_lines(gateway, ids)
    assert ids <= {line["request_id"] for line in lines}, "every request has its canonical line"
    secrets = [keys.sent_live, keys.sent_test, keys.sent_contacts_only, PASSTHROUGH_LIVE, PASSTHROUGH_TEST,
               PROVIDER_CREDENTIAL, invalid_key, "whsec_"]
    for secret in secrets:
        assert secret not in text
    assert phone not in text and phone.lstrip("+") not in text and "5555550123" not in text
    assert "code 123456" not in text  # message bodies are never logged
    # The phone in the undeclared path is there, masked: the line was written, only without the number.
    paths = [line["path"] for line in lines]
    assert any(re.fullmatch(r"/v3/lookups/\+1\*+0123", p) for p in paths), paths
    assert all(set(line) >= {"method", "path", "policy", "route", "mode", "status", "duration_ms"} for line in lines)
