"""Live forwarding against the real server: untouched requests, streamed responses in bounded memory, and
failures that say whether the provider may have acted (proxy/forward.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.stages.idempotency import derived_key
from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import LIVE_REQUEST_ID, error, simulated
from tests.support.servers import Gateway, Provider

MIB = 1024 * 1024


def test_live_request_is_forwarded_untouched(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    raw = b'{ "to" : ["+15555550100"],\n\t"text":"caf\\u00e9 \xc3\xa9",  "channel":["sms"] }'
    response = client.post(
        "/v3/messages?expand=recipients&note=a%20b",
        headers={"x-api-key": keys.sent_live, "content-type": "application/json", "Idempotency-Key": "order-1",
                 "x-profile-id": "7ba7b820-9dad-11d1-80b4-00c04fd430c8", "X-Custom": "kept",
                 "Connection": "keep-alive, X-Hop", "X-Hop": "dropped", "Keep-Alive": "timeout=5"},
        content=raw,
    )
    # The provider's own answer comes back as it was: status, headers, body.
    assert response.status_code == 201
    assert response.headers["x-standin"] == "1"
    assert response.headers["x-request-id"] == "req_live_standin"
    assert "x-test-mode" not in response.headers
    assert response.json()["data"]["echo"] == {"method": "POST", "path": "/v3/messages", "size": len(raw)}
    [record] = recorder.records()
    assert (record["method"], record["raw_path"], record["query"]) == ("POST", "/v3/messages",
                                                                       "expand=recipients&note=a%20b")
    assert base64.b64decode(record["body"]) == raw
    headers = dict(record["headers"])
    assert headers["x-api-key"] == PROVIDER_CREDENTIAL
    # Behind an issued key Sent sees one account for every caller: the key is derived per issued key
    # (proxy/stages/idempotency.py); behind the caller's own key it is untouched (tests/e2e/test_idempotency.py).
    assert headers["idempotency-key"] == derived_key(keys.key_id(keys.sent_live), "order-1")
    assert headers["x-profile-id"] == "7ba7b820-9dad-11d1-80b4-00c04fd430c8"
    assert headers["x-custom"] == "kept"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(raw))
    # Hop-by-hop headers (RFC 9110 §7.6.1), including those the Connection header names, stay here.
    assert "x-hop" not in headers and "keep-alive" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


def test_forwarded_for_chain_gets_the_peer_appended_once(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    """A front proxy's X-Forwarded-For/-Proto are extended, not rewritten: the gateway appends its own peer.

    (uvicorn's proxy-headers mode would first replace the peer with the last forwarded address,
    which the chain would then name twice.)"""
    response = client.post("/v3/contacts", json={"phone_number": "+15555550100"},
                           headers={"x-api-key": keys.sent_live, "X-Forwarded-For": "203.0.113.7",
                                    "X-Forwarded-Proto": "https"})
    assert response.status_code == 201
    [record] = recorder.records()
    headers = dict(record["headers"])
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"


def test_mount_prefix_is_removed_before_forwarding(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.post("/sent/v3/contacts", headers={"x-api-key": keys.sent_live},
                           json={"phone_number": "+15555550100"})
    assert response.status_code == 201
    [record] = recorder.records()
    assert record["raw_path"] == "/v3/contacts"


def test_undeclared_live_read_is_forwarded(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    response = client.get("/v3/templates?page=2", headers={"x-api-key": keys.sent_live})
    assert response.status_code == 200 and response.json()["data"]["live"] is True
    [record] = recorder.records()
    assert (record["method"], record["raw_path"], record["query"]) == ("GET", "/v3/templates", "page=2")


def test_provider_errors_come_back_verbatim(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    """The provider's own 401 (it does not know the credential) is its answer, not re-rendered by the gateway."""
    response = client.get("/v3/me", headers={"x-api-key": keys.sent_live})
    assert response.status_code == 401
    assert response.json() == {"success": False, "data": None, "error": {"code": "AUTH_001", "message": "bad key"},
                               "meta": {"request_id": "req_live_me", "version": "v3"}}
    assert len(recorder.records()) == 1


# ---------------------------------------------------------------- a 50 MiB response in bounded memory

@pytest.fixture(scope="module")
def fresh_gateway(provider: Provider, keys: Keys) -> Iterator[Gateway]:
    """A gateway of its own, so its memory high-water mark is this module's doing alone."""
    gw = Gateway(upstream=provider.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL})
    yield gw
    gw.stop()


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def test_50_mib_response_streams_through_in_bounded_memory(
    fresh_gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    size = 50 * MIB
    headers = {"x-api-key": keys.sent_live}
    with httpx.Client(base_url=fresh_gateway.url, timeout=30, trust_env=False) as http:
        assert len(http.get("/__big/65536", headers=headers).content) == 65536  # warm the pools
        before = _memory_kib(fresh_gateway.process.pid)
        received = 0
        peak_rss = before["VmRSS"]
        with http.stream("GET", f"/__big/{size}", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(size)
            for chunk in response.iter_raw(256 * 1024):
                received += len(chunk)
                if received % MIB < len(chunk):
                    # A client slower than the provider: without back-pressure the gateway would buffer.
                    time.sleep(0.005)
                    peak_rss = max(peak_rss, _memory_kib(fresh_gateway.process.pid)["VmRSS"])
        after = _memory_kib(fresh_gateway.process.pid)
    assert received == size
    growth_mib = (max(after["VmHWM"], peak_rss) - before["VmRSS"]) / 1024
    assert growth_mib < 20, (before, after, peak_rss)


# ---------------------------------------------------------------- the provider refuses, hangs, or resets

def test_refused_provider_is_502_not_sent(dead_gateway: Gateway, keys: Keys) -> None:
    with httpx.Client(base_url=dead_gateway.url, timeout=15, trust_env=False) as http:
        for method, path, body in [("POST", "/v3/messages", {"to": ["+15555550100"], "text": "hi"}),
                                   ("GET", "/v3/contacts", None)]:
            response = http.request(method, path, headers={"x-api-key": keys.sent_live}, json=body)
            err = error(response, 502, "GATEWAY_001")
            assert err["outcome"] == "not_sent"
            assert response.headers["x-gateway-outcome"] == "not_sent"
            assert LIVE_REQUEST_ID.match(response.headers["x-request-id"])
        # Test mode does not need the provider at all.
        simulated(http.post("/v3/messages", headers={"x-api-key": keys.sent_live},
                            json={"sandbox": True, "to": ["+15555550100"], "text": "hi"}), 202)


def test_hanging_provider_is_504_unknown_within_the_deadline(
    impatient_gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    with httpx.Client(base_url=impatient_gateway.url, timeout=15, trust_env=False) as http:
        started = time.monotonic()
        response = http.get("/__hang/5", headers={"x-api-key": keys.sent_live})
        elapsed = time.monotonic() - started
    err = error(response, 504, "GATEWAY_002")
    assert err["outcome"] == "unknown"  # the provider got the request: it may have acted
    assert response.headers["x-gateway-outcome"] == "unknown"
    assert response.headers["x-should-retry"] == "false"  # the official clients would otherwise retry a 5xx
    assert 0.9 <= elapsed < 4, elapsed  # TESTMODE_PROXY_UPSTREAM_TOTAL_TIMEOUT=1, not the provider's 5 s
    assert [r["path"] for r in recorder.records()] == ["/__hang/5"]


def test_provider_that_drops_the_connection_mid_body_is_not_a_complete_answer(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    """A streamed body: headers already went out, so the gateway aborts and the client sees a broken
    response, not a short one."""
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as http, \
            pytest.raises(httpx.RemoteProtocolError):
        http.post("/__reset_big", headers={"x-api-key": keys.sent_live}, json={"to": ["+15555550100"]})
    assert len(recorder.records()) == 1  # sent once, never retried


def test_provider_that_drops_a_small_answer_mid_body_gives_502_unknown(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    """A small body of known length is read whole before anything is sent: the drop is a clean 502
    saying the provider may have acted."""
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as http:
        response = http.post("/__reset", headers={"x-api-key": keys.sent_live}, json={"to": ["+15555550100"]})
    assert response.status_code == 502
    assert response.json()["error"]["outcome"] == "unknown"
    assert response.headers["x-should-retry"] == "false"
    assert len(recorder.records()) == 1
