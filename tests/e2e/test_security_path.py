"""Request targets, methods and error wording against the real server (security review items 1, 9, 11, 12).

Every request goes over a raw socket, with the target exactly as written (httpx would normalise it),
to a gateway of this module's own whose keys are *live* issued keys, one with the ``read`` scope only:
a request the gateway misjudged would be forwarded with the provider credential swapped in. Two
recorders watch: the stand-in provider (``recorder``) and an "attacker" listener whose address the
crafted targets name; the attacker must receive nothing, and the provider only clean paths.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from proxy.keys.registry import create_key
from tests.conftest import PASSTHROUGH_TEST, PROVIDER_CREDENTIAL
from tests.support.attacker import Attacker, attacker_listener
from tests.support.servers import Gateway, Provider
from tests.support.targets import random_target

SENT_ALLOW = "DELETE, GET, HEAD, PATCH, POST, PUT"
SEND = b'{"to": ["+15555550100"], "text": "hi"}'


@dataclass(frozen=True)
class Deployed:
    gateway: Gateway
    log: Path
    read: str  # live, scope `read` only: the reproduction key
    live: str  # live, every scope
    test: str  # test, every scope
    sendgrid: str  # SendGrid, live


@pytest.fixture(scope="module")
def deployed(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    where = tmp_path_factory.mktemp("security_path")
    keys = where / "keys.json"
    read, _ = create_key(keys, "sent", "live", ["read"], "sk_live_gw_")
    live, _ = create_key(keys, "sent", "live", ["*"], "sk_live_gw_")
    test, _ = create_key(keys, "sent", "test", ["*"], "sk_test_gw_")
    sendgrid, _ = create_key(keys, "sendgrid", "live", ["*"], "SG.gwlive.")
    log = where / "gateway.log"
    gateway = Gateway(upstream=provider.url, keys_file=keys, log_file=log,
                      env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                           "TESTMODE_PROXY_CREDENTIAL_SENDGRID": "SG.provider.credential"})
    yield Deployed(gateway, log, read, live, test, sendgrid)
    gateway.stop()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    with attacker_listener() as listener:
        yield listener


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") in ("application/json", "application/problem+json"), self
        return json.loads(self.body)


def send_raw(gateway: Gateway, method: str, target: str, headers: dict[str, str] | None = None,
             body: bytes = b"") -> Answer:
    """One request with the request line exactly as given, on a connection of its own."""
    head = f"{method} {target} HTTP/1.1\r\nhost: 127.0.0.1:{gateway.port}\r\nconnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    if body:
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split(" ")[1]), fields, payload)


def sent_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """A gateway-made error in Sent's envelope, with the given status and Sent error code."""
    assert answer.status == status, answer
    doc = answer.json()
    assert doc["success"] is False and doc["data"] is None, doc
    assert doc["error"]["code"] == code, doc
    assert answer.headers["x-request-id"] == doc["meta"]["request_id"]
    err: dict[str, Any] = doc["error"]
    return err


# ------------------------------------------------------------------ item 1: the path cannot pick the host

# (method, target, body): {a} is the attacker's host:port. The first is the reproduction.
SMUGGLING = [
    ("GET", "/sent%2f@{a}/v3/me", b""),
    ("POST", "/sent%2F@{a}/v3/messages", SEND),
    ("GET", "/se%6et%2f@{a}/v3/me", b""),
    ("GET", "/sent%5c@{a}/v3/me", b""),
    ("GET", "/sent\\@{a}/v3/me", b""),
    ("GET", "//{a}/v3/me", b""),
    ("GET", "/sent//{a}/v3/me", b""),
    ("GET", "/sent/..%2f@{a}/v3/me", b""),
    ("GET", "/sent/%2e%2e/@{a}/v3/me", b""),
    ("GET", "/v3/contacts/..;/me", b""),
    ("GET", "/v3/contacts/%00@{a}", b""),
    ("GET", "/v3/contacts/%zz", b""),
    ("GET", "/v3/contacts/%", b""),
]


@pytest.mark.parametrize(("method", "target", "body"), SMUGGLING, ids=[t for _, t, _ in SMUGGLING])
def test_a_target_that_is_not_a_clean_path_is_400_and_reaches_no_one(
    deployed: Deployed, recorder: Provider, attacker: Attacker, method: str, target: str, body: bytes
) -> None:
    key = deployed.read if method == "GET" else deployed.live
    answer = send_raw(deployed.gateway, method, target.format(a=f"127.0.0.1:{attacker.port}"),
                      {"x-api-key": key}, body)
    err = sent_error(answer, 400, "VALIDATION_001")
    assert "target" in err["message"]
    assert attacker.hits == []
    assert recorder.records() == []


def test_absolute_form_is_served_as_its_path_at_the_policys_origin(
    deployed: Deployed, recorder: Provider, attacker: Attacker
) -> None:
    """RFC 9112 §3.2.2: the host in an absolute-form target is not ours to follow; only its path is used."""
    answer = send_raw(deployed.gateway, "GET", f"http://127.0.0.1:{attacker.port}/v3/templates?page=2",
                      {"x-api-key": deployed.read})
    assert answer.status == 200, answer
    assert attacker.hits == []
    [record] = recorder.records()
    assert (record["method"], record["raw_path"], record["query"]) == ("GET", "/v3/templates", "page=2")


@pytest.mark.parametrize(("target", "forwarded", "query"), [
    # '@' and ':' are ordinary path characters (RFC 3986 §3.3): harmless once the path cannot become the authority.
    ("/v3/contacts/a@{a}", "/v3/contacts/a@{a}", ""),
    # Other escapes pass as received (an id may hold a space or an email); the query is never touched.
    ("/sent/v3/contacts/a%40b.example%20x", "/v3/contacts/a%40b.example%20x", ""),
    ("/v3/contacts/%E2%82%AC?q=%2f@{a}", "/v3/contacts/%E2%82%AC", "q=%2f@{a}"),
    # Escaped unreserved characters are decoded (RFC 3986 §6.2.2.2), so routing sees what the provider sees.
    ("/se%6et/v3/%63ontacts", "/v3/contacts", ""),
])
def test_clean_targets_reach_the_provider_at_the_policys_origin(
    deployed: Deployed, recorder: Provider, attacker: Attacker, target: str, forwarded: str, query: str
) -> None:
    where = f"127.0.0.1:{attacker.port}"
    answer = send_raw(deployed.gateway, "GET", target.format(a=where), {"x-api-key": deployed.read})
    assert answer.status == 200, answer
    assert attacker.hits == []
    [record] = recorder.records()
    assert (record["raw_path"], record["query"]) == (forwarded.format(a=where), query.format(a=where))
    assert dict(record["headers"])["x-api-key"] == PROVIDER_CREDENTIAL


def test_routing_and_forwarding_see_the_same_path(deployed: Deployed, recorder: Provider) -> None:
    """An escaped letter cannot hide a declared route from routing (it would reach the provider as that route)."""
    answer = send_raw(deployed.gateway, "PATCH", "/sent/v3/%63ontacts/ct_1", {"x-api-key": deployed.live},
                      b'{"test_mode": true, "opt_out": true}')
    assert answer.status == 200, answer
    assert answer.headers["x-test-mode"] == "true"  # matched contacts.update and simulated it
    assert recorder.records() == []


def test_generated_targets_reach_only_the_policys_origin(
    deployed: Deployed, recorder: Provider, attacker: Attacker
) -> None:
    """A sample of the property test's targets (tests/test_target.py has the 5,000), through the real server."""
    rng = random.Random(20261205)
    where = f"127.0.0.1:{attacker.port}"
    statuses = set()
    for _ in range(150):
        target = random_target(rng, where)
        try:
            text = target.decode("latin-1")
            answer = send_raw(deployed.gateway, "GET", text, {"x-api-key": deployed.read})
        except (OSError, IndexError, ValueError):  # the server may close a connection it could not parse
            continue
        assert answer.status < 500, (target, answer)
        statuses.add(answer.status)
    assert attacker.hits == []
    for record in recorder.records():
        raw_path = record["raw_path"]
        assert raw_path.startswith("/") and not raw_path.startswith("//"), raw_path
        assert "%2f" not in raw_path.lower() and "\\" not in raw_path and "%5c" not in raw_path.lower(), raw_path
    assert {200, 400} <= statuses  # the sample has both clean targets and refused ones


# ------------------------------------------------------------------ item 9: methods and method overrides

@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "OPTIONS", "PROPFIND", "PURGE"])
def test_a_method_no_route_uses_is_405_with_allow(
    deployed: Deployed, recorder: Provider, attacker: Attacker, method: str
) -> None:
    answer = send_raw(deployed.gateway, method, "/v3/me", {"x-api-key": deployed.live})
    sent_error(answer, 405, "RESOURCE_003")
    assert answer.headers["allow"] == SENT_ALLOW
    assert recorder.records() == []
    assert attacker.hits == []


def test_sendgrid_allows_the_methods_its_policy_uses(deployed: Deployed, recorder: Provider) -> None:
    bearer = {"authorization": f"Bearer {deployed.sendgrid}"}
    answer = send_raw(deployed.gateway, "DELETE", "/sendgrid/v3/templates/t1", bearer)
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert answer.json()["errors"][0]["message"]
    assert recorder.records() == []


def test_head_is_allowed_where_get_is(deployed: Deployed, recorder: Provider) -> None:
    answer = send_raw(deployed.gateway, "HEAD", "/v3/templates", {"x-api-key": deployed.read})
    assert answer.status == 200
    assert [(r["method"], r["raw_path"]) for r in recorder.records()] == [("HEAD", "/v3/templates")]


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
@pytest.mark.parametrize("key", ["read", "passthrough_test"])
def test_method_override_headers_are_refused(
    deployed: Deployed, recorder: Provider, header: str, key: str
) -> None:
    """Scope, test mode and simulation are judged by the request's own method: one a provider might swap
    for another is refused (not stripped: a live request is delivered as sent or not at all)."""
    presented = deployed.read if key == "read" else PASSTHROUGH_TEST  # a provider test key's reads pass on
    answer = send_raw(deployed.gateway, "GET", "/v3/contacts", {"x-api-key": presented, header: "DELETE"})
    err = sent_error(answer, 400, "VALIDATION_001")
    assert header.lower() in err["message"].lower()
    assert recorder.records() == []


# ------------------------------------------------------------------ item 11: odd targets are 400, not 500

@pytest.mark.parametrize(("method", "key"), [("GET", "read"), ("OPTIONS", "read"), ("GET", None)])
def test_asterisk_form_is_400_json(deployed: Deployed, recorder: Provider, method: str, key: str | None) -> None:
    headers = {"x-api-key": deployed.read} if key else {}
    answer = send_raw(deployed.gateway, method, "*", headers)
    assert answer.status == 400, answer
    doc = answer.json()
    if key:
        assert doc["error"]["code"] == "VALIDATION_001"
    else:  # no key header: no policy's dialect applies (RFC 9457)
        assert (doc["status"], doc["code"]) == (400, "bad_request")
    assert recorder.records() == []
    assert "Traceback" not in deployed.log.read_text(errors="replace")


# ------------------------------------------------------------------ item 12: errors name no personal data

def test_test_mode_unsupported_names_no_path_data(deployed: Deployed, recorder: Provider) -> None:
    answer = send_raw(deployed.gateway, "POST", "/v3/contacts/alice@example.com/notes", {"x-api-key": deployed.test},
                      b'{"note": "x"}')
    err = sent_error(answer, 404, "RESOURCE_002")
    assert "alice" not in answer.body.decode() and "example.com" not in answer.body.decode()
    assert err["message"].startswith("POST ")
    assert recorder.records() == []


def test_no_policy_names_no_path_data(deployed: Deployed, recorder: Provider) -> None:
    answer = send_raw(deployed.gateway, "GET", "/v4/contacts/alice@example.com")
    assert answer.status == 404
    assert answer.json()["code"] == "not_found"
    assert "alice" not in answer.body.decode()
