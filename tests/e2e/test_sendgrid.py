"""SendGrid v3 mail/send through the deployed gateway: sandbox mode as the seed describes it
(shared/seeds/004_671b9e2226fcf025.txt), SendGrid's own error format, and live sends untouched.

The stand-in provider records every request it receives: a sandbox request must leave it empty.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import SENDGRID_PASSTHROUGH, Keys
from tests.support.servers import Gateway, Provider

SEND = "/v3/mail/send"
PASSTHROUGH = SENDGRID_PASSTHROUGH  # accepted by the stand-in's GET /v3/scopes (tests/conftest.py)

SEED_MESSAGE = (
    "The from object must at least have an 'email' parameter with a valid email address and may also contain a "
    "'name' parameter. e.g. {\"email\": \"example@example.com\"} or "
    "{\"email\": \"example@example.com\", \"name\": \"Example Recipient\"}"
)
ENABLE_MESSAGE = "The sandbox mode enable param should be a boolean value."
AUTH_MESSAGE = "The provided authorization grant is invalid, expired, or revoked"

# The seed's invalid request, as printed there.
SEED_REQUEST: dict[str, Any] = {
    "personalizations": [{"to": [{"email": "john@example.com"}], "subject": "Hello, World!"}],
    "from": {"email": "John Doe"},
    "content": {"type": "text", "value": "Hello, World!"},
    "mail_settings": {"sandbox_mode": {"enable": True}},
}

VALID: dict[str, Any] = {
    "personalizations": [{
        "to": [{"email": "to@example.com", "name": "To"}],
        "cc": [{"email": "cc@example.com"}],
        "bcc": [{"email": "bcc@example.com"}],
        "subject": "Per-recipient subject",
    }],
    "from": {"email": "from@example.com", "name": "From"},
    "reply_to": {"email": "reply@example.com"},
    "subject": "Hello",
    "content": [{"type": "text/plain", "value": "Hello"}, {"type": "text/html", "value": "<p>Hello</p>"}],
    "mail_settings": {"sandbox_mode": {"enable": True}},
}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def sends(recorder: Provider) -> list[dict[str, Any]]:
    """What reached the provider's mail/send (pass-through key checks go to GET /v3/scopes instead)."""
    return [r for r in recorder.records() if r["path"].endswith(SEND)]


@pytest.fixture(scope="module")
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as client:
        yield client


# ----------------------------------------------------------------------------------------- the seed


def test_the_seeds_invalid_request_gets_exactly_the_seeds_error(http: httpx.Client, keys: Keys,
                                                                 recorder: Provider) -> None:
    response = http.post(SEND, json=SEED_REQUEST, headers=bearer(keys.sendgrid_live))
    assert response.status_code == 400
    # The seed's body, with `help` present (issue 14): the from error has no documentation link.
    assert response.json() == {"errors": [{"field": "from", "message": SEED_MESSAGE, "help": None}]}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-test-mode"] == "true"
    assert recorder.records() == []


@pytest.mark.parametrize("prefix", ["", "/sendgrid"])
def test_a_valid_sandbox_request_is_200_json_and_reaches_nobody(http: httpx.Client, keys: Keys, recorder: Provider,
                                                                prefix: str) -> None:
    response = http.post(prefix + SEND, json=VALID, headers={**bearer(keys.sendgrid_live), "on-behalf-of": "subuser-1"})
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-test-mode"] == "true"
    assert "x-message-id" not in response.headers
    assert recorder.records() == []


def test_the_seeds_request_with_a_real_from_address_is_valid(http: httpx.Client, keys: Keys,
                                                             recorder: Provider) -> None:
    body = copy.deepcopy(SEED_REQUEST)
    body["from"] = {"email": "john.doe@example.com", "name": "John Doe"}
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_live))
    assert (response.status_code, response.json()) == (200, {})
    assert recorder.records() == []


# ----------------------------------------------------------------------------------------- live


@pytest.mark.parametrize("mail_settings", [{"sandbox_mode": {"enable": False}}, None, {"footer": {"enable": False}}],
                         ids=["enable-false", "no-mail-settings", "other-settings"])
@pytest.mark.parametrize("prefix", ["", "/sendgrid"])
def test_a_live_request_is_forwarded_untouched_and_the_providers_202_comes_back(
    http: httpx.Client, keys: Keys, recorder: Provider, prefix: str, mail_settings: dict[str, Any] | None
) -> None:
    body = {k: v for k, v in VALID.items() if k != "mail_settings"}
    if mail_settings is not None:
        body["mail_settings"] = mail_settings
    raw = orjson.dumps(body)
    response = http.post(prefix + SEND, content=raw, headers={
        **bearer(keys.sendgrid_live), "content-type": "application/json", "on-behalf-of": "subuser-1"})
    assert response.status_code == 202
    assert response.headers["x-message-id"].startswith("standin-")
    assert "x-test-mode" not in response.headers
    assert response.content == b""
    [sent] = recorder.records()
    assert (sent["method"], sent["path"]) == ("POST", SEND)
    headers = {k.lower(): v for k, v in sent["headers"]}
    assert headers["authorization"] == "Bearer SG.provider.credential"  # the issued key is swapped
    assert headers["on-behalf-of"] == "subuser-1"
    assert base64.b64decode(sent["body"]) == raw  # byte for byte


def test_a_live_request_is_not_validated_by_the_gateway(http: httpx.Client, keys: Keys, recorder: Provider) -> None:
    """SendGrid judges live requests; the gateway only validates sandbox ones (live.validate: false)."""
    body = {**SEED_REQUEST, "mail_settings": {"sandbox_mode": {"enable": False}}}
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_live))
    assert response.status_code == 202
    assert len(sends(recorder)) == 1


def test_a_pass_through_key_is_verified_then_forwarded_as_is_live_and_never_in_sandbox(
    http: httpx.Client, recorder: Provider
) -> None:
    sandbox = http.post(SEND, json=VALID, headers=bearer(PASSTHROUGH))
    assert (sandbox.status_code, sandbox.json()) == (200, {})
    assert sends(recorder) == []
    live = http.post(SEND, json={**VALID, "mail_settings": {"sandbox_mode": {"enable": False}}},
                     headers=bearer(PASSTHROUGH))
    assert live.status_code == 202
    [sent] = sends(recorder)
    assert {k.lower(): v for k, v in sent["headers"]}["authorization"] == f"Bearer {PASSTHROUGH}"


@pytest.mark.parametrize("mail_settings", [None, {"sandbox_mode": {"enable": False}}], ids=["no-flag", "flag-false"])
def test_an_issued_test_key_without_the_sandbox_flag_answers_as_production_and_sends_nothing(
    http: httpx.Client, keys: Keys, recorder: Provider, mail_settings: dict[str, Any] | None
) -> None:
    """Issue 14: 202, an empty body and an X-Message-Id, like a live send; nothing reaches SendGrid."""
    body = {k: v for k, v in VALID.items() if k != "mail_settings"}
    if mail_settings is not None:
        body["mail_settings"] = mail_settings
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_test))
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["content-length"] == "0" and "transfer-encoding" not in response.headers
    assert len(response.headers["x-message-id"]) == 22
    assert response.headers["x-test-mode"] == "true"
    assert recorder.records() == []


def test_an_issued_test_key_with_the_sandbox_flag_keeps_the_sandbox_200(http: httpx.Client, keys: Keys,
                                                                         recorder: Provider) -> None:
    response = http.post(SEND, json=VALID, headers=bearer(keys.sendgrid_test))
    assert (response.status_code, response.json()) == (200, {})
    assert "x-message-id" not in response.headers
    assert recorder.records() == []


def test_an_invalid_request_under_a_test_key_is_still_refused(http: httpx.Client, keys: Keys,
                                                               recorder: Provider) -> None:
    body = {k: v for k, v in SEED_REQUEST.items() if k != "mail_settings"}
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_test))
    assert response.status_code == 400
    assert response.json() == {"errors": [{"field": "from", "message": SEED_MESSAGE, "help": None}]}
    assert recorder.records() == []


# ----------------------------------------------------------------------------------------- auth


@pytest.mark.parametrize("headers", [
    {},
    {"authorization": "SG.gwlive.unknown"},                 # no Bearer scheme
    {"authorization": "Bearer SG.gwlive.unknown"},          # an issued prefix the registry does not know
    {"authorization": "Bearer SG.gwtest.unknown"},
    {"authorization": "Bearer SG.not-a-sendgrid-key"},      # not SendGrid's shape: never shown to SendGrid
    {"authorization": "Bearer SG.rejectedKeyId000000000.rejected-by-the-provider-000000000000000000"},
], ids=["missing", "no-scheme", "unknown-live", "unknown-test", "not-a-sendgrid-key", "rejected"])
@pytest.mark.parametrize("sandbox", [True, False])
def test_a_bad_key_is_401_in_sendgrids_format_sandbox_or_not(
    http: httpx.Client, recorder: Provider, headers: dict[str, str], sandbox: bool
) -> None:
    response = http.post(SEND, json={**VALID, "mail_settings": {"sandbox_mode": {"enable": sandbox}}},
                         headers=headers)
    assert response.status_code == 401
    # SendGrid's own 401, byte for byte (sendgrid-php #793, sendgrid/docs #5959: Content-Length 116).
    assert response.content == (b'{"errors":[{"message":"The provided authorization grant is invalid, expired, '
                                b'or revoked","field":null,"help":null}]}')
    assert response.headers["content-length"] == "116"
    assert sends(recorder) == []


# ----------------------------------------------------------------------------------------- the flag


@pytest.mark.parametrize("sandbox_mode", [
    {"enable": "true"}, {"enable": "false"}, {"enable": 1}, {"enable": 0}, {"enable": None},
    {"enable": []}, {"enable": {}}, {}, {"enabled": True}, True, False, "true", None, [],
], ids=repr)
@pytest.mark.parametrize("key", ["live", "test"])
def test_a_flag_that_is_not_a_boolean_is_400_with_sendgrids_message_and_never_forwarded(
    http: httpx.Client, keys: Keys, recorder: Provider, sandbox_mode: Any, key: str
) -> None:
    body = {**VALID, "mail_settings": {"sandbox_mode": sandbox_mode}}
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_live if key == "live" else keys.sendgrid_test))
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": ENABLE_MESSAGE, "field": "mail_settings.sandbox_mode.enable",
                                           "help": None}]}
    assert recorder.records() == []


@pytest.mark.parametrize("mail_settings", ["on", 1, None, [{"sandbox_mode": {"enable": True}}]], ids=repr)
def test_mail_settings_that_is_not_an_object_cannot_hide_the_flag(
    http: httpx.Client, keys: Keys, recorder: Provider, mail_settings: Any
) -> None:
    response = http.post(SEND, json={**VALID, "mail_settings": mail_settings}, headers=bearer(keys.sendgrid_live))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "mail_settings.sandbox_mode.enable"
    assert recorder.records() == []


def test_the_flag_given_twice_is_refused(http: httpx.Client, keys: Keys, recorder: Provider) -> None:
    raw = orjson.dumps({k: v for k, v in VALID.items() if k != "mail_settings"})[:-1]
    raw += b',"mail_settings":{"sandbox_mode":{"enable":true,"enable":false}}}'
    response = http.post(SEND, content=raw, headers={**bearer(keys.sendgrid_live),
                                                     "content-type": "application/json"})
    assert response.status_code == 400
    assert recorder.records() == []


# ----------------------------------------------------------------------------------------- validation

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return apply


def _drop(*paths: str) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        for path in paths:
            *parents, last = path.split(".")
            node: Any = body
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            del node[last]
    return apply


def _all(*mutations: Mutation) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(body)
    return apply


def _recipients(n: int, domain: str = "example.com") -> list[dict[str, str]]:
    return [{"email": f"r{i}@{domain}"} for i in range(n)]


HOURS = 3600
LONG_ADDRESS = "a" * 65 + "@" + ".".join(["b" * 63] * 4)  # a valid shape, 321 characters

# (id, mutation of VALID, the fields SendGrid reports — one per error, sorted)
INVALID: list[tuple[str, Mutation, list[str]]] = [
    ("personalizations-missing", _drop("personalizations"), ["personalizations"]),
    ("personalizations-empty", _set("personalizations", []), ["personalizations"]),
    ("personalizations-not-array", _set("personalizations", {"to": []}), ["personalizations"]),
    ("personalizations-1001", _set("personalizations", [{"to": [{"email": f"r{i}@example.com"}]} for i in range(1001)]),
     ["personalizations", "personalizations"]),  # too many personalizations, and so too many recipients
    ("personalization-not-object", _set("personalizations", ["to@example.com"]), ["personalizations.0"]),
    ("to-missing", _drop("personalizations.0.to"), ["personalizations.0.to"]),
    ("to-empty", _set("personalizations.0.to", []), ["personalizations.0.to"]),
    ("to-email-missing", _set("personalizations.0.to", [{"name": "No Address"}]), ["personalizations.0.to.0.email"]),
    ("to-email-invalid", _set("personalizations.0.to.0.email", "not-an-address"), ["personalizations.0.to.0.email"]),
    ("to-email-too-long", _set("personalizations.0.to.0.email", LONG_ADDRESS), ["personalizations.0.to.0.email"]),
    ("to-email-array", _set("personalizations.0.to.0.email", ["to@example.com"]), ["personalizations.0.to.0.email"]),
    ("to-item-string", _set("personalizations.0.to", ["to@example.com"]), ["personalizations.0.to.0"]),
    ("to-name-number", _set("personalizations.0.to.0.name", 7), ["personalizations.0.to.0.name"]),
    ("cc-email-invalid", _set("personalizations.0.cc.0.email", "cc@"), ["personalizations.0.cc.0.email"]),
    ("bcc-email-missing", _set("personalizations.0.bcc", [{}]), ["personalizations.0.bcc.0.email"]),
    ("duplicate-to-cc", _set("personalizations.0.cc", [{"email": "TO@example.com"}]), ["personalizations.0"]),
    ("duplicate-within-to", _set("personalizations.0.to", [{"email": "a@example.com"}, {"email": "a@example.com"}]),
     ["personalizations.0"]),
    ("recipients-1001", _all(_set("personalizations.0.to", _recipients(600)),
                             _set("personalizations.0.cc", _recipients(401, "example.org")),
                             _drop("personalizations.0.bcc")), ["personalizations"]),
    ("personalization-subject-empty", _set("personalizations.0.subject", ""), ["personalizations.0.subject"]),
    ("personalization-header-reserved", _set("personalizations.0.headers", {"Subject": "x"}),
     ["personalizations.0.headers"]),
    ("personalization-header-value", _set("personalizations.0.headers", {"X-Num": 1}),
     ["personalizations.0.headers.X-Num"]),
    ("substitution-value", _set("personalizations.0.substitutions", {"-name-": 1}),
     ["personalizations.0.substitutions.-name-"]),
    ("personalization-custom-arg", _set("personalizations.0.custom_args", {"user_id": 42}),
     ["personalizations.0.custom_args.user_id"]),
    ("personalization-send-at-string", _set("personalizations.0.send_at", "tomorrow"),
     ["personalizations.0.send_at"]),
    ("personalization-send-at-far", _set("personalizations.0.send_at", int(time.time()) + 80 * HOURS),
     ["personalizations.0.send_at"]),
    ("from-missing", _drop("from"), ["from.email"]),
    ("from-email-missing", _set("from", {"name": "Nobody"}), ["from.email"]),
    ("from-email-invalid", _set("from.email", "John Doe"), ["from"]),
    ("from-string", _set("from", "from@example.com"), ["from"]),
    ("from-email-too-long", _set("from.email", LONG_ADDRESS), ["from.email"]),
    ("subject-missing", _all(_drop("subject"), _drop("personalizations.0.subject")), ["subject"]),
    ("subject-missing-in-one-personalization", _all(_drop("subject"), _set("personalizations", [
        VALID["personalizations"][0], {"to": [{"email": "x@example.com"}]}])), ["subject"]),
    ("subject-empty", _set("subject", ""), ["subject"]),
    ("subject-number", _set("subject", 5), ["subject"]),
    ("content-missing", _drop("content"), ["content"]),
    ("content-empty", _set("content", []), ["content"]),
    ("content-string", _set("content", "Hello"), ["content"]),
    ("content-type-missing", _set("content", [{"value": "Hello"}]), ["content.0.type"]),
    ("content-value-empty", _set("content.0.value", ""), ["content.0.value"]),
    ("content-value-missing", _set("content", [{"type": "text/plain"}]), ["content.0.value"]),
    ("content-html-before-plain", _set("content", [VALID["content"][1], VALID["content"][0]]), ["content.1.type"]),
    ("content-type-semicolon", _set("content.1.type", "text/html; charset=utf-8"), ["content.1.type"]),
    ("content-object-without-value", _set("content", {"type": "text/plain"}), ["content.value"]),
    ("reply-to-invalid", _set("reply_to.email", "reply"), ["reply_to.email"]),
    ("reply-to-and-list", _set("reply_to_list", [{"email": "other@example.com"}]), ["reply_to_list"]),
    ("attachment-not-base64", _set("attachments", [{"content": "not base64!", "filename": "a.txt"}]),
     ["attachments.0.content"]),
    ("attachment-filename-missing", _set("attachments", [{"content": "aGVsbG8="}]), ["attachments.0.filename"]),
    ("attachment-content-empty", _set("attachments", [{"content": "", "filename": "a.txt"}]),
     ["attachments.0.content"]),
    ("attachment-disposition", _set("attachments", [{"content": "aGVsbG8=", "filename": "a.txt",
                                                     "disposition": "embedded"}]), ["attachments.0.disposition"]),
    ("attachment-filename-crlf", _set("attachments", [{"content": "aGVsbG8=", "filename": "a\r\n.txt"}]),
     ["attachments.0.filename"]),
    ("categories-11", _set("categories", [f"c{i}" for i in range(11)]), ["categories"]),
    ("categories-duplicate", _set("categories", ["news", "news"]), ["categories"]),
    ("category-too-long", _set("categories", ["x" * 256]), ["categories.0"]),
    ("category-number", _set("categories", [7]), ["categories.0"]),
    ("category-non-ascii", _set("categories", ["café"]), ["categories.0"]),
    ("custom-args-value", _set("custom_args", {"order": 42}), ["custom_args.order"]),
    ("custom-args-empty", _set("custom_args", {}), ["custom_args"]),
    ("send-at-string", _set("send_at", "1700000000"), ["send_at"]),
    ("send-at-fraction", _set("send_at", 1700000000.5), ["send_at"]),
    ("send-at-far", _set("send_at", int(time.time()) + 73 * HOURS), ["send_at"]),
    ("batch-id-number", _set("batch_id", 123), ["batch_id"]),
    ("asm-group-missing", _set("asm", {"groups_to_display": [1]}), ["asm.group_id"]),
    ("asm-group-string", _set("asm", {"group_id": "12"}), ["asm.group_id"]),
    ("asm-groups-26", _set("asm", {"group_id": 1, "groups_to_display": list(range(26))}), ["asm.groups_to_display"]),
    ("header-reserved-any-case", _set("headers", {"content-type": "text/plain"}), ["headers"]),
    ("header-name-space", _set("headers", {"X Custom": "v"}), ["headers"]),
    ("header-value-number", _set("headers", {"X-Custom": 1}), ["headers.X-Custom"]),
    ("template-id-number", _set("template_id", 12), ["template_id"]),
    # Issue 14: a legacy id is a GUID, a dynamic one d- and 32 hex digits; nothing else.
    ("template-id-empty", _set("template_id", ""), ["template_id"]),
    ("template-id-name", _set("template_id", "welcome-template"), ["template_id"]),
    ("template-id-dynamic-short", _set("template_id", "d-0123"), ["template_id"]),
    ("template-id-dynamic-not-hex", _set("template_id", "d-0123456789abcdef0123456789abcdeg"), ["template_id"]),
    ("template-id-guid-trailing-newline", _set("template_id", "8e6b3b0e-4c1d-4b8b-9e2a-6c0f1d2e3a4b\n"),
     ["template_id"]),
    ("ip-pool-short", _set("ip_pool_name", "x"), ["ip_pool_name"]),
    ("footer-enable-string", _set("mail_settings.footer", {"enable": "true"}), ["mail_settings.footer.enable"]),
    ("bypass-enable-null", _set("mail_settings.bypass_list_management", {"enable": None}),
     ["mail_settings.bypass_list_management.enable"]),
    ("spam-threshold", _set("mail_settings.spam_check", {"enable": True, "threshold": 11}),
     ["mail_settings.spam_check.threshold"]),
    ("click-tracking-enable", _set("tracking_settings", {"click_tracking": {"enable": "yes"}}),
     ["tracking_settings.click_tracking.enable"]),
    ("open-tracking-enable", _set("tracking_settings", {"open_tracking": {"enable": 1}}),
     ["tracking_settings.open_tracking.enable"]),
    ("subscription-tracking-enable", _set("tracking_settings", {"subscription_tracking": {"enable": "on"}}),
     ["tracking_settings.subscription_tracking.enable"]),
    ("ganalytics-enable", _set("tracking_settings", {"ganalytics": {"enable": 0}}),
     ["tracking_settings.ganalytics.enable"]),
    ("tracking-settings-not-object", _set("tracking_settings", True), ["tracking_settings"]),
    ("every-error-at-once", _all(_set("from.email", "nope"), _drop("subject"), _drop("personalizations.0.subject"),
                                 _set("content", []), _set("categories", ["a", "a"])),
     ["categories", "content", "from", "subject"]),
]


@pytest.mark.parametrize(("mutation", "fields"), [pytest.param(m, f, id=i) for i, m, f in INVALID])
def test_invalid_sandbox_requests_get_sendgrids_errors_every_one_at_once(
    http: httpx.Client, keys: Keys, recorder: Provider, mutation: Mutation, fields: list[str]
) -> None:
    body = copy.deepcopy(VALID)
    mutation(body)
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_live))
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert sorted(e["field"] for e in errors) == fields
    for error in errors:  # every error object carries all three fields (issue 14)
        assert list(error) == ["message", "field", "help"]
        assert isinstance(error["message"], str) and error["message"]
        assert error["help"] is None or error["help"].startswith("http://sendgrid.com/docs/")
    assert response.headers["x-test-mode"] == "true"
    assert recorder.records() == []


def _message(body: dict[str, Any], http: httpx.Client, key: str) -> list[dict[str, Any]]:
    response = http.post(SEND, json=body, headers=bearer(key))
    assert response.status_code == 400
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors


@pytest.mark.parametrize(("mutation", "error"), [
    (_set("personalizations.0.to.0.email", ["to@example.com"]),  # sendgrid-django #64, from the live API
     {"field": "personalizations.0.to.0.email", "message": "Invalid type. Expected: string, given: array.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"}),
    (_drop("personalizations.0.to"),  # sendgrid-nodejs #1425
     {"field": "personalizations.0.to",
      "message": "The to array is required for all personalization objects, and must have at least one email "
                 "object with a valid email address.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"}),
    (_set("personalizations.0.to.0.email", "nope"),
     {"field": "personalizations.0.to.0.email", "message": "Does not contain a valid address.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"}),
    (_set("personalizations.0.cc", [{"email": "To@Example.com"}]),
     {"field": "personalizations.0",
      "message": "Each email address in the personalization block should be unique between to, cc, and bcc. We "
                 "found the first duplicate instance of [T***@Example.com] in the personalizations.0.cc field.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.recipient_errors"}),
    (_set("personalizations", [{"to": [{"email": "a@example.com"}]}] * 1001),
     {"field": "personalizations",
      "message": "The personalization block is limited to 1000 personalizations per API request. You have provided "
                 "1001 personalizations. Please consider splitting this into multiple requests and resending your "
                 "request.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#-Personalizations-Errors"}),
    (_drop("from"),
     {"field": "from.email",
      "message": "The from object must be provided for every email send. It is an object that requires the email "
                 "parameter, but may also contain a name parameter.  e.g. {\"email\" : \"example@example.com\"}  or "
                 "{\"email\" : \"example@example.com\", \"name\" : \"Example Recipient\"}.", "help": None}),
    (_set("content.0.value", ""),
     {"field": "content.0.value", "message": "The content value must be a string at least one character in length.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.content.value"}),
    (_set("categories", ["x" * 11] * 2),
     {"field": "categories", "message": "The categories must be a unique list, and you have included xxxxxxxxxxx "
                                        "more than once.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.categories"}),
    (_set("template_id", "unknown-template"),  # as a live 400 words it
     {"field": "template_id", "message": "The template_id must be a valid GUID, you provided 'unknown-template'.",
      "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.template_id"}),
], ids=["type", "to-required", "bad-address", "duplicate", "personalizations-limit", "from-missing", "content-value",
        "category-repeat", "template-id"])
def test_sendgrids_own_wording(http: httpx.Client, keys: Keys, recorder: Provider, mutation: Mutation,
                               error: dict[str, Any]) -> None:
    body = copy.deepcopy(VALID)
    mutation(body)
    assert error in _message(body, http, keys.sendgrid_live)
    assert recorder.records() == []


@pytest.mark.parametrize("mutation", [
    _all(_drop("subject"), _drop("personalizations.0.subject"), _drop("content"),
         _set("template_id", "d-0123456789abcdef0123456789abcdef")),
    _all(_drop("subject"), _drop("personalizations.0.subject"), _drop("content"),
         _set("template_id", "8E6B3B0E-4C1D-4B8B-9E2A-6C0F1D2E3A4B")),  # a legacy template: a GUID
    _drop("subject"),  # every personalization has one
    _set("content", {"type": "text/plain", "value": "one block, as in the seed's example"}),
    _set("content", [{"type": "text/plain", "value": "a"}, {"type": "text/html", "value": "b"},
                     {"type": "text/calendar", "value": "c"}]),
    _set("content", [{"type": "text/html", "value": "<p>html only</p>"}]),
    _set("send_at", int(time.time()) + 71 * HOURS),
    _set("send_at", 1),  # the past sends at once
    _set("categories", [f"c{i}" for i in range(10)]),
    _set("attachments", [{"content": "aGVsbG8=", "filename": "hello.txt", "type": "text/plain",
                          "disposition": "inline", "content_id": "hello"}]),
    _all(_drop("reply_to"), _set("reply_to_list", [{"email": "a@example.com"}, {"email": "b@example.com"}])),
    _set("headers", {"X-Custom": "value", "List-Unsubscribe": "<mailto:u@example.com>"}),
    _set("asm", {"group_id": 1, "groups_to_display": [1, 2]}),
    _set("tracking_settings", {"click_tracking": {"enable": True, "enable_text": False},
                               "ganalytics": {"enable": False, "utm_source": "x"}}),
    _set("personalizations.0.custom_args", {"user_id": "42"}),
    _set("unknown_field", "ignored, as SendGrid ignores it"),
], ids=["template", "legacy-template", "subject-per-personalization", "content-object", "content-order", "html-only",
        "send-at-71h", "send-at-past", "categories-10", "attachment", "reply-to-list", "headers", "asm", "tracking",
        "custom-args", "unknown-field"])
def test_valid_sandbox_variants_are_200(http: httpx.Client, keys: Keys, recorder: Provider,
                                        mutation: Mutation) -> None:
    body = copy.deepcopy(VALID)
    mutation(body)
    response = http.post(SEND, json=body, headers=bearer(keys.sendgrid_live))
    assert (response.status_code, response.json()) == (200, {}), response.text
    assert recorder.records() == []
