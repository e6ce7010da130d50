"""The official Python client (PyPI ``sentdm``) pointed at the gateway, changing nothing else.

``sandbox=True`` calls come back as parsed success data (with the client's strict response validation on,
so every synthesized answer must fit the client's own models) and reach nobody; the same calls without
``sandbox`` reach the stand-in provider once and its answer comes back to the client.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sent_dm import AuthenticationError, BadRequestError, PermissionDeniedError, Sent

from proxy.stages.idempotency import derived_key
from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.envelope import TEST_REQUEST_ID, UUID
from tests.support.servers import Gateway, Provider

DEFINITION: Any = {"body": {"multiChannel": {"template": "Hi"}}}
CAMPAIGN: Any = {"name": "Alerts", "description": "Order alerts", "type": "App",
                 "use_cases": [{"messaging_use_case_us": "ACCOUNT_NOTIFICATION", "sample_messages": ["Hi"]}]}


@pytest.fixture(scope="module", params=["", "/sent"], ids=["root", "sent-prefix"])
def base_url(request: pytest.FixtureRequest, gateway: Gateway) -> str:
    """The gateway as a client's base URL: at the root (sidecar) and under /sent (shared gateway)."""
    prefix: str = request.param
    return gateway.url + prefix


@pytest.fixture(scope="module")
def sent(base_url: str, keys: Keys) -> Iterator[Sent]:
    """One client per base URL (building one loads TLS certificates: ~0.3 s)."""
    with Sent(api_key=keys.sent_live, base_url=base_url, _strict_response_validation=True) as client:
        yield client


def _sent_body(record: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(record["body"]))


def _call(call: Callable[[Sent], Any], client: Sent) -> Any:
    """Make a client call; some (contacts.delete, profiles.*) are marked deprecated in sentdm 0.46 and warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call(client)


def test_messages_send_in_sandbox_returns_parsed_data_and_reaches_nobody(sent: Sent, recorder: Provider) -> None:
    response = sent.messages.send(to=["+15555550100", "+15555550101"], text="Your code is 123456",
                                  channel=["sms"], sandbox=True)
    assert response.success is True
    assert response.data is not None and response.data.status == "QUEUED"
    recipients = response.data.recipients or []
    assert [r.to for r in recipients] == ["+15555550100", "+15555550101"]
    assert all(r.message_id and UUID.match(r.message_id) for r in recipients)
    assert response.meta is not None and TEST_REQUEST_ID.match(response.meta.request_id or "")
    assert recorder.records() == []


def test_contacts_create_in_sandbox_returns_parsed_data_and_reaches_nobody(sent: Sent, recorder: Provider) -> None:
    response = sent.contacts.create(phone_number="+15555550100", sandbox=True)
    assert response.success is True
    assert response.data is not None
    assert response.data.phone_number == "+15555550100"
    assert response.data.id and UUID.match(response.data.id)
    assert response.data.created_at is not None  # parsed into a datetime by the client
    assert recorder.records() == []


def test_seed_flag_through_extra_body_is_test_mode_too(sent: Sent, recorder: Provider) -> None:
    response = sent.contacts.create(phone_number="+15555550100", extra_body={"test_mode": True})
    assert response.data is not None and response.data.phone_number == "+15555550100"
    assert recorder.records() == []


# Every mutation the client can flag with ``sandbox`` on the routes Sent's policy declares.
SANDBOX_CALLS: list[tuple[str, Callable[[Sent], Any], Callable[[Any], bool]]] = [
    ("contacts.update", lambda s: s.contacts.update("ct_1", opt_out=True, sandbox=True),
     lambda r: r.data.id == "ct_1" and r.data.opt_out is True),
    ("contacts.delete", lambda s: s.contacts.delete("ct_1", sandbox=True), lambda r: r is None),
    ("templates.create", lambda s: s.templates.create(category="UTILITY", language="en_US", sandbox=True,
                                                       definition=DEFINITION),
     lambda r: r.data.status == "PENDING"),
    ("templates.update", lambda s: s.templates.update("tpl_1", name="renamed", sandbox=True),
     lambda r: r.data.id == "tpl_1"),
    ("templates.delete", lambda s: s.templates.delete("tpl_1", sandbox=True), lambda r: r is None),
    ("webhooks.create", lambda s: s.webhooks.create(display_name="hooks", endpoint_url="https://example.com/h",
                                                     event_types=["message.delivered"], sandbox=True),
     lambda r: r.data.signing_secret.startswith("whsec_")),
    ("webhooks.update", lambda s: s.webhooks.update("wh_1", display_name="renamed", sandbox=True),
     lambda r: r.data.id == "wh_1"),
    ("webhooks.rotate_secret", lambda s: s.webhooks.rotate_secret("wh_1", sandbox=True),
     lambda r: r.data.signing_secret.startswith("whsec_")),
    ("webhooks.test", lambda s: s.webhooks.test("wh_1", event_type="message.delivered", sandbox=True),
     lambda r: r.success is True),
    ("webhooks.toggle_status", lambda s: s.webhooks.toggle_status("wh_1", is_active=False, sandbox=True),
     lambda r: r.data.is_active is False),
    ("profiles.create", lambda s: s.profiles.create(name="Acme", sandbox=True),
     lambda r: r.data.name == "Acme"),
    ("profiles.update", lambda s: s.profiles.update("pr_1", name="Acme 2", sandbox=True),
     lambda r: r.data.id == "pr_1"),
    ("profiles.delete", lambda s: s.profiles.delete("pr_1", sandbox=True), lambda r: r is None),
    ("profiles.complete", lambda s: s.profiles.complete("pr_1", web_hook_url="https://example.com/done",
                                                         sandbox=True),
     lambda r: r.data.status == "SUBMITTED"),
    ("profiles.campaigns.create", lambda s: s.profiles.campaigns.create("pr_1", campaign=CAMPAIGN, sandbox=True),
     lambda r: r.data.name == "Alerts"),
    ("profiles.campaigns.update", lambda s: s.profiles.campaigns.update("cp_1", profile_id="pr_1", campaign=CAMPAIGN,
                                                                        sandbox=True),
     lambda r: r.data.id == "cp_1"),
    ("profiles.campaigns.delete", lambda s: s.profiles.campaigns.delete("cp_1", profile_id="pr_1", sandbox=True),
     lambda r: r is None),
    ("users.invite", lambda s: s.users.invite(email="ada@example.com", role="developer", sandbox=True),
     lambda r: r.data.email == "ada@example.com"),
    ("users.update_role", lambda s: s.users.update_role("us_1", role="admin", sandbox=True),
     lambda r: r.data.role == "admin"),
    ("users.remove", lambda s: s.users.remove("us_1", sandbox=True), lambda r: r is None),
]


@pytest.mark.parametrize(("call", "check"), [c[1:] for c in SANDBOX_CALLS], ids=[c[0] for c in SANDBOX_CALLS])
def test_every_sandbox_call_parses_strictly_and_reaches_nobody(
    sent: Sent, recorder: Provider, call: Callable[[Sent], Any], check: Callable[[Any], bool]
) -> None:
    result = _call(call, sent)
    assert check(result), result
    assert recorder.records() == []


def test_test_key_without_sandbox_is_test_mode(base_url: str, keys: Keys, recorder: Provider) -> None:
    with Sent(api_key=keys.sent_test, base_url=base_url, _strict_response_validation=True) as client:
        response = client.messages.send(to=["+15555550100"], text="hello")
    assert response.data is not None and response.data.status == "QUEUED"
    assert recorder.records() == []


def test_without_sandbox_the_call_reaches_the_provider_and_its_answer_comes_back(
    sent: Sent, recorder: Provider, base_url: str
) -> None:
    response = sent.contacts.create(phone_number="+15555550100")
    # The stand-in's own answer, parsed by the client.
    assert response.success is True
    assert response.meta is not None and response.meta.request_id == "req_live_standin"
    assert response.data is not None and getattr(response.data, "live", None) is True
    [record] = recorder.records()
    assert (record["method"], record["path"]) == ("POST", "/v3/contacts")  # the /sent prefix is removed
    assert _sent_body(record) == {"phone_number": "+15555550100"}
    headers = dict(record["headers"])
    assert headers["x-api-key"] == PROVIDER_CREDENTIAL
    assert headers["user-agent"].startswith("Sent/")


def test_message_send_without_sandbox_reaches_the_provider_once(
    sent: Sent, recorder: Provider, base_url: str, keys: Keys
) -> None:
    key = "order-42" + base_url.rsplit(":", 1)[1].replace("/", "-")  # one key per base URL: else a replay
    response = sent.messages.send(to=["+15555550100"], text="hello", idempotency_key=key)
    assert response.meta is not None and response.meta.request_id == "req_live_standin"
    [record] = recorder.records()
    assert (record["method"], record["path"]) == ("POST", "/v3/messages")
    assert _sent_body(record) == {"to": ["+15555550100"], "text": "hello"}
    # Behind an issued key, derived per key (proxy/stages/idempotency.py): Sent sees one account for all.
    assert dict(record["headers"])["idempotency-key"] == derived_key(keys.key_id(keys.sent_live), key)


def test_sandbox_false_reaches_the_provider(sent: Sent, recorder: Provider) -> None:
    _call(lambda s: s.contacts.delete("ct_1", sandbox=False), sent)
    [record] = recorder.records()
    assert (record["method"], record["path"]) == ("DELETE", "/v3/contacts/ct_1")
    assert _sent_body(record) == {"sandbox": False}


def test_client_errors_map_to_the_clients_exceptions(base_url: str, keys: Keys, recorder: Provider) -> None:
    with Sent(api_key=keys.sent_live, base_url=base_url, max_retries=0) as client:
        with pytest.raises(BadRequestError) as bad:
            client.contacts.create(phone_number="+15555550100", extra_body={"sandbox": "true"})
        assert bad.value.status_code == 400
        assert bad.value.body["error"]["code"] == "VALIDATION_005"  # type: ignore[index]
        with pytest.raises(BadRequestError):
            client.contacts.create(phone_number="5550100", sandbox=True)
    with Sent(api_key=keys.sent_contacts_only, base_url=base_url, max_retries=0) as client, \
            pytest.raises(PermissionDeniedError):
        client.messages.send(to=["+15555550100"], text="hello", sandbox=True)
    with Sent(api_key="sk_test_gw_not_issued", base_url=base_url, max_retries=0) as client, \
            pytest.raises(AuthenticationError):
        client.messages.send(to=["+15555550100"], text="hello", sandbox=True)
    assert recorder.records() == []
