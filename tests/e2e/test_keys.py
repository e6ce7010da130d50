"""Keys against the real server: issued keys (the registry) and pass-through keys (the provider's own).

* An issued live key reaches the provider as the configured provider credential, never as itself.
* An issued test key never reaches the provider at all.
* A pass-through key is checked once with the provider's read-only ``GET /v3/me``: rejected → 401 and
  nothing else is sent; the provider cannot be asked → 503 ``key_verification_unavailable``,
  ``outcome: not_sent`` (fail closed: proxy/keys/passthrough.py).
* Scopes: a key limited to ``contacts:write`` gets 403 on messages and 2xx on contacts.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.keys.registry import create_key
from tests.conftest import PASSTHROUGH_LIVE, PASSTHROUGH_TEST, PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import error, simulated
from tests.support.servers import Gateway, Provider

CONTACT = {"phone_number": "+15555550100"}


def _everything_sent(record: dict[str, Any]) -> str:
    """All a recorded request carried, as text: path, query, every header and the body."""
    headers = " ".join(f"{k}: {v}" for k, v in record["headers"])
    return f"{record['raw_path']}?{record['query']} {headers} {base64.b64decode(record['body']).decode('latin-1')}"


def _fresh(prefix: str) -> str:
    """A key nobody has seen: verification results are cached per key (positive 300 s, negative 30 s)."""
    return f"{prefix}{uuid.uuid4().hex}"


# ---------------------------------------------------------------- issued keys

@pytest.mark.parametrize("extra", [{}, {"authorization": "Bearer {key}"}, {"Authorization": "{key}"}],
                         ids=["x-api-key", "and-bearer-copy", "and-raw-copy"])
def test_issued_live_key_reaches_the_provider_as_the_credential_never_as_itself(
    client: httpx.Client, keys: Keys, recorder: Provider, extra: dict[str, str]
) -> None:
    headers = {"x-api-key": keys.sent_live, **{k: v.format(key=keys.sent_live) for k, v in extra.items()}}
    sends = [("POST", "/v3/contacts", CONTACT), ("DELETE", "/v3/contacts/ct_1", {"sandbox": False}),
             ("GET", "/v3/me", None)]
    if not extra:  # an undeclared path is claimed by the key header alone (with two, routing is ambiguous)
        sends.append(("GET", "/v3/contacts", None))
    for method, path, body in sends:
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code in (200, 201, 401), response.text  # the stand-in's answers
    records = recorder.records()
    assert [(r["method"], r["path"]) for r in records] == [(method, path) for method, path, _ in sends]
    for record in records:
        assert dict(record["headers"])["x-api-key"] == PROVIDER_CREDENTIAL
        assert keys.sent_live not in _everything_sent(record)
        assert keys.sent_live.removeprefix("sk_live_gw_") not in _everything_sent(record)


def test_issued_test_key_never_reaches_the_provider(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    headers = {"x-api-key": keys.sent_test}
    answers = [
        client.post("/v3/contacts", headers=headers, json=CONTACT),                       # no flag: the key decides
        client.post("/v3/contacts", headers=headers, json={**CONTACT, "sandbox": False}),  # false cannot undo it
        client.post("/v3/messages", headers=headers, json={"to": ["+15555550100"], "text": "hi"}),
        client.request("DELETE", "/v3/contacts/ct_1", headers=headers),
        client.get("/v3/me", headers=headers),                                             # simulated identity
        client.get("/v3/contacts", headers=headers),                                       # a read: not simulated
        client.post("/v3/voice/tokens", headers=headers, json={}),                         # an undeclared mutation
        client.post("/sent/v3/contacts", headers=headers, json=CONTACT),
    ]
    assert [a.status_code for a in answers] == [201, 201, 202, 204, 200, 404, 404, 201]
    me = simulated(answers[4], 200)
    assert me["environment"] == "test"
    error(answers[5], 404, "RESOURCE_002")
    assert recorder.records() == []


@pytest.mark.parametrize("key", ["sk_live_gw_" + "A" * 40, "sk_test_gw_" + "B" * 40, "sk_test_gw_"])
def test_unknown_issued_style_key_is_401_without_asking_the_provider(
    client: httpx.Client, recorder: Provider, key: str
) -> None:
    response = client.post("/v3/contacts", headers={"x-api-key": key}, json={**CONTACT, "test_mode": True})
    error(response, 401, "AUTH_001")
    assert recorder.records() == []  # not even GET /v3/me: a gateway-style key is never shown to the provider


# ---------------------------------------------------------------- pass-through keys

@pytest.mark.parametrize("prefix", ["sk_live_", "sk_test_"])
def test_key_the_provider_rejects_is_401_and_only_the_check_was_sent(
    client: httpx.Client, recorder: Provider, prefix: str
) -> None:
    key = _fresh(prefix + "rejected_")
    for _ in range(2):  # the second answer comes from the negative cache
        response = client.post("/v3/messages", headers={"x-api-key": key},
                               json={"test_mode": True, "to": ["+15555550100"], "text": "hi"})
        error(response, 401, "AUTH_001")
    [check] = recorder.records()
    assert (check["method"], check["path"], check["body"]) == ("GET", "/v3/me", "")
    assert dict(check["headers"])["x-api-key"] == key


@pytest.mark.parametrize("status", [500, 503])  # 429: tests/e2e/test_key_verification_limits.py
def test_provider_that_cannot_answer_the_check_fails_closed_with_503(
    client: httpx.Client, recorder: Provider, status: int
) -> None:
    recorder.configure(me_status=status)
    key = _fresh("sk_test_unverifiable_")
    try:
        for body in ({"test_mode": True, **CONTACT}, CONTACT):
            response = client.post("/v3/contacts", headers={"x-api-key": key}, json=body)
            err = error(response, 503, "GATEWAY_005")
            assert err["outcome"] == "not_sent"
            assert response.headers["x-gateway-outcome"] == "not_sent"
            assert int(response.headers["retry-after"]) > 0
    finally:
        recorder.configure(me_status=None)
    # One check per request (failures are not cached), and nothing else.
    assert [(r["method"], r["path"]) for r in recorder.records()] == [("GET", "/v3/me")] * 2


@pytest.mark.parametrize("key", [PASSTHROUGH_LIVE, PASSTHROUGH_TEST, "sk_test_never_checked_before"])
def test_provider_on_a_closed_port_fails_closed_with_503(dead_gateway: Gateway, key: str) -> None:
    with httpx.Client(base_url=dead_gateway.url, timeout=15, trust_env=False) as http:
        response = http.post("/v3/contacts", headers={"x-api-key": key}, json={"sandbox": True, **CONTACT})
    err = error(response, 503, "GATEWAY_005")
    assert err["outcome"] == "not_sent"
    assert response.headers["retry-after"]


def test_issued_test_key_needs_no_provider_at_all(dead_gateway: Gateway, keys: Keys) -> None:
    with httpx.Client(base_url=dead_gateway.url, timeout=15, trust_env=False) as http:
        response = http.post("/v3/contacts", headers={"x-api-key": keys.sent_test}, json=CONTACT)
    simulated(response, 201)


def test_provider_test_key_is_verified_once_then_never_forwarded(client: httpx.Client, recorder: Provider) -> None:
    for body in (CONTACT, {**CONTACT, "sandbox": True}, {**CONTACT, "test_mode": False}):
        simulated(client.post("/v3/contacts", headers={"x-api-key": PASSTHROUGH_TEST}, json=body), 201)
    # At most the one verification (none if an earlier test already verified the key).
    assert [(r["method"], r["path"]) for r in recorder.records()] in ([], [("GET", "/v3/me")])


def test_provider_live_key_is_forwarded_as_itself_when_live_and_kept_back_when_flagged(
    client: httpx.Client, recorder: Provider
) -> None:
    simulated(client.post("/v3/contacts", headers={"x-api-key": PASSTHROUGH_LIVE},
                          json={**CONTACT, "sandbox": True}), 201)
    live = client.post("/v3/contacts", headers={"x-api-key": PASSTHROUGH_LIVE}, json=CONTACT)
    assert live.status_code == 201 and live.json()["data"]["live"] is True
    sends = [r for r in recorder.records() if r["path"] != "/v3/me"]
    assert len(sends) == 1
    assert dict(sends[0]["headers"])["x-api-key"] == PASSTHROUGH_LIVE


# ---------------------------------------------------------------- credentials that disagree, malformed keys

@pytest.mark.parametrize("headers", [
    [("x-api-key", "{test}"), ("authorization", "Bearer {live}")],
    [("x-api-key", "{live}"), ("authorization", "Bearer {other}")],
    [("x-api-key", "{test}"), ("x-api-key", "{live}")],
], ids=["test-key-and-live-bearer", "live-key-and-other-bearer", "key-header-twice"])
def test_two_credentials_that_disagree_are_refused(
    client: httpx.Client, keys: Keys, recorder: Provider, headers: list[tuple[str, str]]
) -> None:
    values = {"test": keys.sent_test, "live": keys.sent_live, "other": PASSTHROUGH_LIVE}
    response = client.post("/v3/contacts", headers=[(k, v.format(**values)) for k, v in headers], json=CONTACT)
    error(response, 400, "AUTH_003")
    assert recorder.records() == []


@pytest.mark.parametrize("raw_key", [b"\xe9t\xe9", b"sk_live_\xff\xfe", b"sk_test\tkey", b""],
                         ids=["latin-1", "binary", "tab", "empty"])
def test_malformed_key_is_401_and_never_sent_anywhere(client: httpx.Client, recorder: Provider,
                                                      raw_key: bytes) -> None:
    response = client.post("/v3/contacts", headers=[(b"x-api-key", raw_key), (b"content-type", b"application/json")],
                           content=b'{"test_mode": true, "phone_number": "+15555550100"}')
    error(response, 401, "AUTH_001")
    assert recorder.records() == []


# ---------------------------------------------------------------- scopes

def test_scoped_key_gets_403_outside_its_scope_and_2xx_inside(
    client: httpx.Client, keys: Keys, recorder: Provider
) -> None:
    headers = {"x-api-key": keys.sent_contacts_only}
    for body in ({"test_mode": True, "to": ["+15555550100"], "text": "hi"}, {"to": ["+15555550100"], "text": "hi"}):
        err = error(client.post("/v3/messages", headers=headers, json=body), 403, "AUTH_002")
        assert "messages:write" in err["message"]
    error(client.post("/v3/templates", headers=headers, json={"test_mode": True}), 403, "AUTH_002")
    simulated(client.post("/v3/contacts", headers=headers, json={"test_mode": True, **CONTACT}), 201)
    simulated(client.patch("/v3/contacts/ct_1", headers=headers, json={"opt_out": True}), 200)
    delete = client.request("DELETE", "/v3/contacts/ct_1", headers=headers, json={"sandbox": True})
    assert delete.status_code == 204
    assert recorder.records() == []


# ---------------------------------------------------------------- the registry file deleted while serving

def _answers_within(http: httpx.Client, key: str, status: int, seconds: float = 10.0) -> httpx.Response:
    """Send a live contact creation until it is answered with ``status``: the server checks the file every 2 s."""
    deadline = time.monotonic() + seconds
    while True:
        response = http.post("/v3/contacts", headers={"x-api-key": key}, json=CONTACT)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_deleting_the_registry_file_revokes_every_issued_key_until_it_is_back(
    provider: Provider, tmp_path: Path
) -> None:
    """Security issue #10, item 10: a deleted registry was a silent no-op and every issued key kept working."""
    keys_file = tmp_path / "keys.json"
    live, _ = create_key(keys_file, "sent", "live", ["*"], "sk_live_gw_")
    test, _ = create_key(keys_file, "sent", "test", ["*"], "sk_test_gw_")
    saved = keys_file.read_bytes()
    gw = Gateway(upstream=provider.url, keys_file=keys_file, log_file=tmp_path / "gateway.log",
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL})
    try:
        with httpx.Client(base_url=gw.url, timeout=15, trust_env=False) as http:
            provider.clear()
            assert http.post("/v3/contacts", headers={"x-api-key": live}, json=CONTACT).status_code == 201
            [forwarded] = provider.records()
            assert dict(forwarded["headers"])["x-api-key"] == PROVIDER_CREDENTIAL

            keys_file.unlink()
            provider.clear()
            # The test key (answered by the gateway, never forwarded) shows when the deletion has been seen.
            error(_answers_within(http, test, 401), 401, "AUTH_001")
            error(http.post("/v3/contacts", headers={"x-api-key": live}, json=CONTACT), 401, "AUTH_001")
            assert provider.records() == []  # refused, not verified with the provider, not forwarded

            keys_file.write_bytes(saved)
            simulated(_answers_within(http, test, 201), 201)
            assert http.post("/v3/contacts", headers={"x-api-key": live}, json=CONTACT).status_code == 201
            assert len(provider.records()) == 1
    finally:
        gw.stop()
    lines = [json.loads(line) for line in gw.log().splitlines() if line.startswith("{")]
    missing = [line for line in lines if line.get("event") == "key_registry_missing"]
    assert [(m["level"], m["keys_dropped"]) for m in missing] == [("error", 2)]  # logged once, not every check
    assert any(line.get("event") == "key_registry_reloaded" for line in lines)
