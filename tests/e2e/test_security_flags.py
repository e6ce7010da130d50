"""A test read through the deployed gateway (issue #10, item 6): a read (GET/HEAD/OPTIONS) passes through
in test mode only when its key alone makes it a test and it carries no body; a read whose body says test is
never forwarded.

The stand-in provider records every request it receives: each refused request must leave it empty. The
key's own body-less test read does reach it, so the recorder is known to be listening.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE, PASSTHROUGH_TEST
from tests.support.servers import Provider

JSON = {"content-type": "application/json"}


def _body(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["body"])


def _warm(client: httpx.Client, key: str, recorder: Provider) -> None:
    """Have the pass-through key verified (GET /v3/me, cached) and forget that check."""
    assert client.get("/v3/contacts", headers={"x-api-key": key}).status_code == 200
    recorder.clear()


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
@pytest.mark.parametrize(("key", "raw"), [
    (PASSTHROUGH_LIVE, '{"test_mode": true}'),
    (PASSTHROUGH_LIVE, '{"sandbox": true}'),
    (PASSTHROUGH_TEST, '{"test_mode": true}'),
    (PASSTHROUGH_TEST, "{}"),  # the key's own test read, but with a body
], ids=["live-key-test-mode", "live-key-sandbox", "test-key-test-mode", "test-key-empty-body"])
def test_a_read_with_a_body_is_never_passed_through_in_test_mode(
    client: httpx.Client, recorder: Provider, method: str, key: str, raw: str
) -> None:
    _warm(client, key, recorder)
    response = client.request(method, "/v3/contacts", content=raw.encode(), headers={"x-api-key": key, **JSON})
    if method == "OPTIONS":  # no policy routes OPTIONS: refused before the verdict
        assert response.status_code == 405
    else:
        assert response.status_code == 404  # test_mode_unsupported: a test, and nothing simulates it
        assert response.headers["x-test-mode"] == "true"
    assert recorder.records() == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_made_test_by_the_providers_own_key_alone_still_passes(
    client: httpx.Client, recorder: Provider, method: str
) -> None:
    _warm(client, PASSTHROUGH_TEST, recorder)
    response = client.request(method, "/v3/contacts", headers={"x-api-key": PASSTHROUGH_TEST})
    assert response.is_success  # the stand-in's own answer
    assert "x-test-mode" not in response.headers
    [record] = recorder.records()
    assert (record["method"], record["path"], _body(record)) == (method, "/v3/contacts", b"")
