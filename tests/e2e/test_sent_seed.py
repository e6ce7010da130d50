"""Every example in Sent's test-mode document (shared/seeds/000_702c49dd00730e38.txt), against the real
server: the HTTP exchange, the "Supported Endpoints" table, the 401 and troubleshooting sections, and the
current API's message shape (shared/reference/provider-clients.md).

The key used is an issued *live* key unless a case says otherwise: the body flag alone must keep the
request away from the provider, which records every request it receives.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE, Keys
from tests.support.envelope import ISO_UTC, LIVE_REQUEST_ID, UUID, envelope, error, simulated
from tests.support.servers import Provider

SEED_MESSAGE = {
    "test_mode": True,
    "phone_number": "+1234567890",
    "template_id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    "variables": {"customer_name": "Test User"},
}


def test_seed_message_example_reproduced(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json=SEED_MESSAGE)

    assert response.status_code == 201
    assert response.headers["x-test-mode"] == "true"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_test_")
    doc = envelope(response)
    assert doc["success"] is True
    assert doc["error"] is None
    assert doc["meta"]["request_id"] == response.headers["x-request-id"]
    data = doc["data"]
    assert set(data) == {"id", "phone", "template_id", "channel", "status", "price", "created_at"}
    assert UUID.match(data["id"]) and str(uuid.UUID(data["id"])) == data["id"]
    assert data["phone"] == "+1234567890"
    assert data["template_id"] == "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    assert data["channel"] == "sms"
    assert data["status"] == "pending"
    assert type(data["price"]) is float and data["price"] == 0.01
    assert ISO_UTC.match(data["created_at"])
    assert recorder.records() == []


def test_seed_unit_test_example_assertions_hold(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    """The seed's own test suite: success is True, status "pending", meta carries a request_id."""
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json={
        "test_mode": True, "phone_number": "+1234567890", "template_id": "welcome-template",
        "variables": {"name": "Test"},
    }).json()
    assert response["success"] is True
    assert response["data"]["status"] == "pending"
    assert "request_id" in response["meta"]
    assert recorder.records() == []


def test_seed_contacts_curl_example(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post(
        "/v3/contacts",
        headers={"x-api-key": keys.sent_live, "Content-Type": "application/json"},
        content=b'{\n    "test_mode": true,\n    "phone_number": "+15555555555"\n  }',
    )
    data = simulated(response, 201)
    assert data["phone_number"] == "+15555555555"
    assert UUID.match(data["id"])
    assert data["opt_out"] is False
    assert ISO_UTC.match(data["created_at"])
    assert recorder.records() == []


def test_each_request_gets_its_own_ids(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    first = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json=SEED_MESSAGE)
    second = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json=SEED_MESSAGE)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert first.json()["data"]["id"] != second.json()["data"]["id"]
    assert recorder.records() == []


# ---------------------------------------------------------------- the "Supported Endpoints" table

def _message(data: dict[str, Any]) -> None:
    assert data["status"] == "pending" and data["phone"] == "+15555550100"


def _contact(data: dict[str, Any]) -> None:
    assert data["phone_number"] == "+15555550100" and UUID.match(data["id"])


def _updated_contact(data: dict[str, Any]) -> None:
    assert data["id"] == "ct_123" and data["opt_out"] is True and data["default_channel"] == "whatsapp"


def _template(data: dict[str, Any]) -> None:
    assert data["status"] == "PENDING" and data["category"] == "MARKETING" and UUID.match(data["id"])


def _updated_template(data: dict[str, Any]) -> None:
    assert data["id"] == "tpl_9" and data["name"] == "renamed"


def _webhook(data: dict[str, Any]) -> None:
    assert data["endpoint_url"] == "https://example.com/hooks" and data["event_types"] == ["message.delivered"]
    assert _whsec_bytes(data["signing_secret"]) >= 24


def _profile(data: dict[str, Any]) -> None:
    assert data["name"] == "Acme" and UUID.match(data["id"]) and data["brand"] is None


def _brand(data: dict[str, Any]) -> None:
    assert data["business"] == {"legal_name": "Acme Inc"}
    assert data["submitted_to_tcr"] is True
    assert isinstance(data["tcr_brand_id"], str) and data["tcr_brand_id"].startswith("B")
    assert data["identity_status"] == "UNVERIFIED"
    assert ISO_UTC.match(data["submitted_at"])


def _whsec_bytes(secret: str) -> int:
    """Standard Webhooks: ``whsec_`` + base64 of at least 24 random bytes."""
    assert secret.startswith("whsec_")
    return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True))


TABLE: list[tuple[str, str, dict[str, Any], int, Callable[[dict[str, Any]], None] | None]] = [
    ("POST", "/v3/messages", {"phone_number": "+15555550100", "template_id": "welcome"}, 201, _message),
    ("POST", "/v3/contacts", {"phone_number": "+15555550100"}, 201, _contact),
    ("PATCH", "/v3/contacts/ct_123", {"opt_out": True, "default_channel": "whatsapp"}, 200, _updated_contact),
    ("DELETE", "/v3/contacts/ct_123", {}, 204, None),
    ("POST", "/v3/templates", {"category": "MARKETING", "language": "en_US", "definition": {"body": "Hi"}}, 201,
     _template),
    ("PUT", "/v3/templates/tpl_9", {"name": "renamed", "definition": {"body": "Hey"}}, 200, _updated_template),
    ("DELETE", "/v3/templates/tpl_9", {}, 204, None),
    ("POST", "/v3/webhooks", {"endpoint_url": "https://example.com/hooks", "event_types": ["message.delivered"]},
     201, _webhook),
    ("POST", "/v3/profiles", {"name": "Acme"}, 201, _profile),
    ("POST", "/v3/brands", {"business": {"legal_name": "Acme Inc"}}, 201, _brand),
]


@pytest.mark.parametrize("flag", ["test_mode", "sandbox"])
@pytest.mark.parametrize(("method", "path", "body", "status", "check"), TABLE,
                         ids=[f"{m} {p}" for m, p, *_ in TABLE])
def test_supported_endpoint_behaves_as_the_table_says(
    client: httpx.Client, keys: Keys, recorder: Provider, flag: str,
    method: str, path: str, body: dict[str, Any], status: int, check: Callable[[dict[str, Any]], None] | None,
) -> None:
    response = client.request(method, path, headers={"x-api-key": keys.sent_live}, json={flag: True, **body})
    if status == 204:
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert response.headers["x-test-mode"] == "true"
        assert response.headers["x-request-id"].startswith("req_test_")
    else:
        data = simulated(response, status)
        assert check is not None
        check(data)
    # "contact not deleted", "no SMS sent", "no database write": the provider never heard of it.
    assert recorder.records() == []


def test_webhook_secret_is_random_each_call(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    secrets = set()
    for _ in range(3):
        data = simulated(client.post("/v3/webhooks", headers={"x-api-key": keys.sent_live},
                                     json={"test_mode": True, "endpoint_url": "https://example.com/h"}), 201)
        assert _whsec_bytes(data["signing_secret"]) >= 24
        secrets.add(data["signing_secret"])
    assert len(secrets) == 3
    assert recorder.records() == []


def test_profile_with_brand_gets_a_tcr_simulation(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    data = simulated(client.post("/v3/profiles", headers={"x-api-key": keys.sent_live}, json={
        "sandbox": True, "name": "Acme", "brand": {"business": {"legal_name": "Acme Inc"}},
    }), 201)
    brand = data["brand"]
    assert brand["submitted_to_tcr"] is True and brand["identity_status"] == "UNVERIFIED"
    assert brand["business"] == {"legal_name": "Acme Inc"}
    assert recorder.records() == []


# ---------------------------------------------------------------- "How it works": the checks still run

def test_validation_runs_in_test_mode(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live},
                           json={"test_mode": True, "phone_number": "12345", "template_id": "welcome"})
    err = error(response, 400, "VALIDATION_001")
    assert response.headers["x-test-mode"] == "true"
    assert "phone_number" in err["details"]
    assert "E.164" in err["details"]["phone_number"][0]
    assert recorder.records() == []


def test_permissions_are_checked_in_test_mode(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_contacts_only}, json=SEED_MESSAGE)
    error(response, 403, "AUTH_002")
    assert recorder.records() == []


def test_test_mode_with_idempotency_key(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live, "Idempotency-Key": "test-001"},
                           json={"test_mode": True, "phone_number": "+1234567890", "template_id": "template-id"})
    simulated(response, 201)
    assert recorder.records() == []


# ---------------------------------------------------------------- "Getting 401 Errors?"

@pytest.mark.parametrize("key", ["invalid-key", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"])
def test_invalid_key_is_401_even_in_test_mode(client: httpx.Client, recorder: Provider, key: str) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": key}, json=SEED_MESSAGE)
    error(response, 401, "AUTH_001")
    assert LIVE_REQUEST_ID.match(response.headers["x-request-id"])
    # Neither is a Sent key (sk_live_…/sk_test_…): not even the read-only GET /v3/me was made for it.
    assert recorder.records() == []


def test_a_key_of_sents_shape_is_checked_with_the_provider(client: httpx.Client, recorder: Provider) -> None:
    key = "sk_test_" + "0" * 32  # the seed's "invalid API key", in the shape Sent issues
    response = client.post("/v3/messages", headers={"x-api-key": key}, json=SEED_MESSAGE)
    error(response, 401, "AUTH_001")
    # The key was checked with the provider's read-only GET /v3/me; the message itself never left.
    records = recorder.records()
    assert [(r["method"], r["path"]) for r in records] == [("GET", "/v3/me")]
    assert dict(records[0]["headers"])["x-api-key"] == key


def test_valid_key_with_test_mode_works(client: httpx.Client, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": PASSTHROUGH_LIVE}, json=SEED_MESSAGE)
    simulated(response, 201)
    assert all((r["method"], r["path"]) == ("GET", "/v3/me") for r in recorder.records())


# ---------------------------------------------------------------- "Test Mode Not Working?"

def test_string_true_is_not_test_mode_and_is_refused(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live},
                           json={**SEED_MESSAGE, "test_mode": "true"})
    err = error(response, 400, "VALIDATION_005")
    assert "test_mode" in err["details"]
    assert "x-test-mode" not in response.headers
    assert recorder.records() == []


@pytest.mark.parametrize("header", ["X-Test-Mode", "test_mode", "Test-Mode", "X-Sandbox", "sandbox"])
def test_test_mode_in_a_header_is_refused(
    client: httpx.Client, keys: Keys, recorder: Provider, header: str
) -> None:
    body = {k: v for k, v in SEED_MESSAGE.items() if k != "test_mode"}
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live, header: "true"}, json=body)
    err = error(response, 400, "VALIDATION_006")
    assert header.lower() in err["message"]
    assert recorder.records() == []


@pytest.mark.parametrize("query", ["test_mode=true", "sandbox=true", "test_mode=1"])
def test_test_mode_in_the_query_is_refused(client: httpx.Client, keys: Keys, recorder: Provider, query: str) -> None:
    body = {k: v for k, v in SEED_MESSAGE.items() if k != "test_mode"}
    response = client.post(f"/v3/messages?{query}", headers={"x-api-key": keys.sent_live}, json=body)
    error(response, 400, "VALIDATION_006")
    assert recorder.records() == []


def test_test_mode_false_is_live(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    """The other side of the rule: ``false`` is a live request, forwarded once, untouched."""
    raw = b'{"test_mode": false, "phone_number": "+1234567890", "template_id": "welcome-template"}'
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live,
                                                     "content-type": "application/json"}, content=raw)
    assert response.status_code == 201
    assert "x-test-mode" not in response.headers
    assert response.json()["data"]["live"] is True
    records = recorder.records()
    assert len(records) == 1 and base64.b64decode(records[0]["body"]) == raw


# ---------------------------------------------------------------- the current API's message shape

def test_current_api_send_is_202_queued_with_one_recipient_per_number(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    numbers = ["+15555550100", "+447700900123", "+15555550101"]
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json={
        "sandbox": True, "to": numbers, "text": "Your code is 123456", "channel": ["sms"],
    })
    data = simulated(response, 202)
    assert data["status"] == "QUEUED"
    recipients = data["recipients"]
    assert [r["to"] for r in recipients] == numbers
    assert all(set(r) == {"to", "message_id", "channel", "body"} for r in recipients)
    assert all(UUID.match(r["message_id"]) for r in recipients)
    assert len({r["message_id"] for r in recipients}) == len(numbers)
    assert all(r["channel"] == "sms" and r["body"] == "Your code is 123456" for r in recipients)
    assert recorder.records() == []


def test_current_api_send_with_template_and_auto_channel(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json={
        "test_mode": True, "to": ["+15555550100"], "channel": ["sent"],
        "template": {"id": "7ba7b820-9dad-11d1-80b4-00c04fd430c8", "name": "order_confirmation",
                     "parameters": {"name": "Ada"}},
    })
    data = simulated(response, 202)
    assert data["status"] == "QUEUED"
    assert data["template_id"] == "7ba7b820-9dad-11d1-80b4-00c04fd430c8"
    assert data["template_name"] == "order_confirmation"
    [recipient] = data["recipients"]
    assert recipient["to"] == "+15555550100"
    assert recipient["channel"] is None  # "sent" means auto-detect: no channel chosen yet
    assert recorder.records() == []


@pytest.mark.parametrize("body", [
    {"to": [], "text": "hi"},
    {"to": ["+15555550100"]},
    {"to": ["not-a-number"], "text": "hi"},
    {"to": ["+15555550100"], "text": "hi", "channel": ["pigeon"]},
])
def test_current_api_send_is_validated(
    client: httpx.Client, keys: Keys, recorder: Provider, body: dict[str, Any]
) -> None:
    response = client.post("/v3/messages", headers={"x-api-key": keys.sent_live}, json={"sandbox": True, **body})
    error(response, 400, "VALIDATION_001")
    assert recorder.records() == []
