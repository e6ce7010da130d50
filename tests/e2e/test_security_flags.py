"""Test flags that could be read as a test by someone, through the deployed gateway (issue #10, items 4, 6, 7).

- 4: a key on a trigger's path given twice — the flag's parent as much as the flag — is a 400: parsers
  disagree on which copy wins, so the request cannot be told apart from a test.
- 6: a read (GET/HEAD/OPTIONS) passes through in test mode only when its key alone makes it a test and
  it carries no body; a read whose body says test is never forwarded.
- 7: near-miss spellings — a body key that differs from a trigger's only in case or ``-``/``_`` (a
  provider on Go's or ASP.NET's JSON defaults reads it as the flag), a flag-like header or query name in
  any case, ``_``/``-``, ``[]`` or nested — are a 400, never a live send.

The stand-in provider records every request it receives: each refused request must leave it empty. Each
case has a live twin that does reach it, so the recorder is known to be listening.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE, PASSTHROUGH_TEST, Keys
from tests.e2e.test_sendgrid import VALID, bearer
from tests.support.servers import Provider

SENT_SEND = "/v3/messages"
SENT_BODY = '"to": ["+15555550100"], "text": "hi"'
MAIL_SEND = "/v3/mail/send"
MAIL_REST = json.dumps({k: v for k, v in VALID.items() if k != "mail_settings"})[1:-1]
JSON = {"content-type": "application/json"}


def _sent(client: httpx.Client, key: str, raw: str, headers: dict[str, str] | None = None,
          query: str = "") -> httpx.Response:
    return client.post(SENT_SEND + query, content=raw.encode(), headers={"x-api-key": key, **JSON, **(headers or {})})


def _mail(client: httpx.Client, key: str, raw: str, headers: dict[str, str] | None = None,
          query: str = "") -> httpx.Response:
    return client.post(MAIL_SEND + query, content=raw.encode(), headers={**bearer(key), **JSON, **(headers or {})})


def _refused_by_sent(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_006"


def _refused_by_sendgrid(response: httpx.Response, field: str | None = None) -> None:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    if field is not None:
        assert error["field"] == field


def _delivered(recorder: Provider, raw: str) -> None:
    [record] = recorder.records()
    assert json.loads(_body(record)) == json.loads(raw)


def _body(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["body"])


# ------------------------------------------------------------------ item 4: a duplicated parent of a flag

DUPLICATED = [
    ('{"mail_settings": {"sandbox_mode": {"enable": true}}, ' + MAIL_REST + ', "mail_settings": {}}', "mail_settings"),
    ('{"mail_settings": {}, ' + MAIL_REST + ', "mail_settings": {"sandbox_mode": {"enable": true}}}', "mail_settings"),
    ('{' + MAIL_REST + ', "mail_settings": {"sandbox_mode": {"enable": true}, "sandbox_mode": {"enable": false}}}',
     "mail_settings.sandbox_mode"),
    ('{' + MAIL_REST + ', "mail_settings": {"sandbox_mode": {"enable": true, "enable": false}}}',
     "mail_settings.sandbox_mode.enable"),
]


@pytest.mark.parametrize(("raw", "field"), DUPLICATED, ids=["parent-last-empty", "parent-first-empty",
                                                              "sandbox-mode-twice", "enable-twice"])
def test_a_key_on_the_flags_path_given_twice_is_400_and_reaches_nobody(
    client: httpx.Client, keys: Keys, recorder: Provider, raw: str, field: str
) -> None:
    _refused_by_sendgrid(_mail(client, keys.sendgrid_live, raw), field)
    assert recorder.records() == []


def test_the_same_send_with_each_key_once_goes_live(client: httpx.Client, keys: Keys, recorder: Provider) -> None:
    raw = '{' + MAIL_REST + ', "mail_settings": {"sandbox_mode": {"enable": false}}}'
    assert _mail(client, keys.sendgrid_live, raw).status_code == 202
    _delivered(recorder, raw)


# ------------------------------------------------------------------ item 6: a test read passes only by its key

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


# ------------------------------------------------------------------ item 7: near-miss spellings

NEAR_MISSES_SENT: list[tuple[str, dict[str, str], str]] = [
    ('{"Test_Mode": true, ' + SENT_BODY + "}", {}, ""),
    ('{"SANDBOX": true, ' + SENT_BODY + "}", {}, ""),
    ('{"test-mode": true, ' + SENT_BODY + "}", {}, ""),
    ('{"\u017fandbox": true, ' + SENT_BODY + "}", {}, ""),  # Go folds the long s to s
    ('{"test_mode": false, "TEST_MODE": true, ' + SENT_BODY + "}", {}, ""),
    ("{" + SENT_BODY + "}", {"x_test_mode": "true"}, ""),
    ("{" + SENT_BODY + "}", {"X-Sandbox-Mode": "true"}, ""),
    ("{" + SENT_BODY + "}", {"X-TEST-MODE": "1"}, ""),
    ("{" + SENT_BODY + "}", {}, "?Sandbox=true"),
    ("{" + SENT_BODY + "}", {}, "?sandbox[]=true"),
    ("{" + SENT_BODY + "}", {}, "?options%5Btest_mode%5D=true"),
]


@pytest.mark.parametrize(("raw", "headers", "query"), NEAR_MISSES_SENT,
                         ids=["Test_Mode", "SANDBOX", "test-mode", "long-s", "exact-and-upper", "header-x_test_mode",
                              "header-X-Sandbox-Mode", "header-X-TEST-MODE", "query-Sandbox", "query-sandbox[]",
                              "query-nested"])
def test_a_near_miss_flag_on_sent_is_400_and_reaches_nobody(
    client: httpx.Client, keys: Keys, recorder: Provider, raw: str, headers: dict[str, str], query: str
) -> None:
    _refused_by_sent(_sent(client, keys.sent_live, raw, headers, query))
    assert recorder.records() == []


def test_the_exact_spelling_set_to_false_goes_live_on_sent(client: httpx.Client, keys: Keys,
                                                           recorder: Provider) -> None:
    raw = '{"test_mode": false, "sandbox": false, ' + SENT_BODY + "}"
    assert _sent(client, keys.sent_live, raw, {"x-sandbox-id": "7"}, "?sandboxes=1").status_code == 201
    _delivered(recorder, raw)


def _mail_settings(settings: str) -> str:
    return "{" + MAIL_REST + ', "mail_settings": ' + settings + "}"


NEAR_MISSES_SENDGRID: list[tuple[str, dict[str, str], str, str | None]] = [
    (_mail_settings('{"sandbox_mode": {"Enable": true}}'), {}, "", "mail_settings.sandbox_mode.Enable"),
    (_mail_settings('{"Sandbox_Mode": {"enable": true}}'), {}, "", "mail_settings.Sandbox_Mode"),
    (_mail_settings('{"sandbox-mode": {"enable": true}}'), {}, "", "mail_settings.sandbox-mode"),
    ('{"Mail_Settings": {"sandbox_mode": {"enable": true}}, ' + MAIL_REST + "}", {}, "", "Mail_Settings"),
    (_mail_settings('{"sandbox_mode": {"enable": false}}'), {"X-Sandbox-Mode": "true"}, "", None),
    (_mail_settings('{"sandbox_mode": {"enable": false}}'), {"x_sandbox": "true"}, "", None),
    (_mail_settings('{"sandbox_mode": {"enable": false}}'), {}, "?sandbox_mode=true", None),
    (_mail_settings('{"sandbox_mode": {"enable": false}}'), {}, "?mail_settings[sandbox_mode][enable]=true", None),
]


@pytest.mark.parametrize(("raw", "headers", "query", "field"), NEAR_MISSES_SENDGRID,
                         ids=["Enable", "Sandbox_Mode", "sandbox-mode", "Mail_Settings", "header-X-Sandbox-Mode",
                              "header-x_sandbox", "query-sandbox_mode", "query-nested"])
def test_a_near_miss_flag_on_sendgrid_is_400_and_reaches_nobody(
    client: httpx.Client, keys: Keys, recorder: Provider, raw: str, headers: dict[str, str], query: str,
    field: str | None,
) -> None:
    _refused_by_sendgrid(_mail(client, keys.sendgrid_live, raw, headers, query), field)
    assert recorder.records() == []
