"""The edge (proxy/server.py), through the real server: malformed and smuggling-shaped requests, oversized
heads and slow clients are answered in JSON problem details, and none of them reaches the provider."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.servers import Gateway, Provider


def exchange(port: int, raw: bytes, timeout: float = 10) -> bytes:
    """Send ``raw`` on a fresh connection; everything the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, orjson.loads(body)


LIVE_BODY = b'{"test_mode": false, "phone_number": "+15555550100"}'


def post(key: str, extra_headers: bytes, body: bytes = LIVE_BODY) -> bytes:
    return (b"POST /v3/contacts HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nx-api-key: "
            + key.encode() + b"\r\n" + extra_headers + b"\r\n" + body)


FRAMING = {
    "content-length beside transfer-encoding": b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n",
    "content-length twice": b"Content-Length: 51\r\nContent-Length: 51\r\n",
    "content-length twice, disagreeing": b"Content-Length: 51\r\nContent-Length: 5\r\n",
    "space before the colon": b"Content-Length : 51\r\n",
    "obs-fold": b"Content-Length: 51\r\nX-Folded: a\r\n  b\r\n",
    "signed content-length": b"Content-Length: +51\r\n",
}


@pytest.mark.parametrize("case", FRAMING)
def test_smuggling_framing_is_refused_in_json_and_never_forwarded(
    gateway: Gateway, keys: Keys, recorder: Provider, case: str
) -> None:
    status, headers, body = parse(exchange(gateway.port, post(keys.sent_live, FRAMING[case])))
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert body["status"] == 400 and str(body["request_id"]).startswith("req_")
    assert "Nothing was sent" in str(body["detail"])
    assert recorder.records() == []


def test_a_transfer_coding_other_than_chunked_is_501(gateway: Gateway, keys: Keys, recorder: Provider) -> None:
    raw = post(keys.sent_live, b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n")
    status, headers, body = parse(exchange(gateway.port, raw))
    assert (status, headers["content-type"], body["code"]) == (501, "application/problem+json", "not_implemented")
    assert recorder.records() == []


def test_garbage_is_400_json(gateway: Gateway, recorder: Provider) -> None:
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"  # TLS spoken to a plain port
    status, headers, body = parse(exchange(gateway.port, tls_hello))
    assert (status, headers["content-type"], body["code"]) == (400, "application/problem+json", "bad_request")
    assert recorder.records() == []


def test_an_oversized_request_line_is_414_and_an_oversized_head_431(gateway: Gateway, keys: Keys,
                                                                     recorder: Provider) -> None:
    long_target = b"GET /v3/contacts?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n"
    status, headers, body = parse(exchange(gateway.port, long_target))
    assert (status, headers["content-type"], body["code"]) == (414, "application/problem+json", "uri_too_long")
    many = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"v" * 1000) for n in range(300))  # 300 KiB: past 4 x 16 KiB
    status, headers, body = parse(exchange(gateway.port, post(keys.sent_live, many)))
    assert (status, headers["content-type"], body["code"]) == (431, "application/problem+json", "headers_too_large")
    assert recorder.records() == []


def test_an_upgrade_request_is_answered_as_plain_http(client: httpx.Client, keys: Keys) -> None:
    response = client.get("/healthz", headers={"connection": "upgrade", "upgrade": "websocket",
                                               "sec-websocket-version": "13", "sec-websocket-key": "x" * 24})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture(scope="module")
def slow_client_gateway(provider: Provider, keys: Keys) -> Iterator[Gateway]:
    gw = Gateway(upstream=provider.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL, "TESTMODE_PROXY_HEADER_TIMEOUT": "1"})
    yield gw
    gw.stop()


def test_a_request_head_dripped_too_slowly_is_408_json(slow_client_gateway: Gateway, recorder: Provider) -> None:
    with socket.create_connection(("127.0.0.1", slow_client_gateway.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v3/contacts HTTP/1.1\r\n")
        answer = b""
        for _ in range(40):  # one header line every 0.2 s: never done within the 1 s deadline
            try:
                sock.sendall(b"X-Drip: 1\r\n")
            except OSError:
                break
            time.sleep(0.2)
            sock.setblocking(False)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if answer:
                break
        elapsed = time.monotonic() - started
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    status, headers, body = parse(answer)
    assert (status, headers["content-type"], body["code"]) == (408, "application/problem+json", "request_timeout")
    assert 1.0 <= elapsed < 1.8, f"closed after {elapsed:.2f}s for a 1 s deadline"
    assert recorder.records() == []


def test_a_slowloris_of_500_connections_does_not_stop_normal_requests(
    gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    """500 connections each holding half a request head; normal requests are served meanwhile, and at the
    default 10 s header deadline every one of the 500 is answered 408 and closed."""
    idle = []
    try:
        for _ in range(500):
            sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
            sock.sendall(b"GET /v3/contacts HTTP/1.1\r\nHost: gw\r\n")
            idle.append(sock)
        opened = time.monotonic()
        with httpx.Client(base_url=gateway.url, timeout=5, trust_env=False) as client:
            for _ in range(20):
                response = client.post("/v3/contacts", headers={"x-api-key": keys.sent_test},
                                       json={"phone_number": "+15555550100"})
                assert response.status_code == 201
        served_in = time.monotonic() - opened
        closed_after = []
        for sock in idle:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            closed_after.append(time.monotonic() - opened)
            assert parse(answer)[0] == 408
    finally:
        for sock in idle:
            sock.close()
    assert served_in < 5, f"20 normal requests took {served_in:.2f}s beside the slowloris"
    assert max(closed_after) < 10.5 + 2, f"last slow connection closed {max(closed_after):.2f}s after opening"
    assert recorder.records() == []
