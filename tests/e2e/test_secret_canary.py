"""The secret canary, aimed: the suite's marked secrets, phone number and email sent where a careless gateway
would repeat them (a refused key, a key in a query or path, a secret as a wrongly typed flag, a phone in a
path, a repeated email), then none of them is in an error body, the gateway's log or its metrics page.

The same check runs over every gateway of the session when it ends (tests/support/canary.py); this module
proves the places most likely to leak on a gateway of its own, and that the check sees a leak at all."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE, PROVIDER_CREDENTIAL, Keys
from tests.support import canary
from tests.support.canary import EMAIL, PHONE, WEBHOOK_SECRET, findings, marked
from tests.support.servers import Gateway, Provider

SENDGRID_CREDENTIAL = f"SG.{canary.MARKER}.provider-credential"


@pytest.fixture(scope="module")
def canary_gateway(provider: Provider, keys: Keys) -> Iterator[Gateway]:
    gw = Gateway(upstream=provider.url, keys_file=keys.file,
                 env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL,
                      "TESTMODE_PROXY_CREDENTIAL_SENDGRID": SENDGRID_CREDENTIAL})
    yield gw
    gw.stop()


def test_the_check_sees_each_kind_of_leak_and_passes_masked_values() -> None:
    planted = (f'{{"key": "{marked("sk_live_gw_")}", "sg": "SG.abcd.efghij", "unmarked": "sk_test_0123456789",'
               f' "secret": "{WEBHOOK_SECRET}", "phone": "{PHONE}", "email": "{EMAIL}"}}')
    kinds = {finding.kind for finding in findings(planted, "planted")}
    assert kinds == {"canary marker", "Sent key", "SendGrid key", "webhook secret", "phone number", "email address"}
    masked = ('{"path": "/v3/contacts/+1******0142", "to": "c***@example.com", "key_id": "key_0a1b2c3d4e5f",'
              ' "timestamp": "2026-01-15T10:30:00.123456Z", "request_id": "req_57402091a19c"}')
    assert findings(masked, "masked") == []


def test_marked_secrets_sent_where_they_could_be_echoed_come_back_nowhere(
    canary_gateway: Gateway, keys: Keys, recorder: Provider
) -> None:
    unknown_key = marked("sk_live_")
    sent = [
        ("GET", "/v3/contacts", {"x-api-key": unknown_key}, None),  # refused by the provider: 401
        ("GET", f"/v3/contacts?api_key={keys.sent_live}", {"x-api-key": keys.sent_test}, None),
        ("GET", f"/v3/unknown/{keys.sent_live}", {"x-api-key": keys.sent_live}, None),  # an undeclared path
        ("GET", f"/v3/contacts/{PHONE}", {"x-api-key": keys.sent_live}, None),
        ("POST", "/v3/contacts", {"x-api-key": keys.sent_live}, {"phone_number": PHONE, "test_mode": WEBHOOK_SECRET}),
        ("POST", "/v3/contacts", {"x-api-key": keys.sent_test}, {"phone_number": keys.sent_live}),
        ("POST", "/v3/contacts", {"x-api-key": keys.sent_live, "authorization": f"Bearer {PASSTHROUGH_LIVE}"},
         {"phone_number": PHONE}),  # two credentials that disagree
        ("POST", "/v3/messages", {"x-api-key": keys.sent_live}, {"to": [PHONE], "text": "hi"}),  # forwarded
        ("POST", "/v3/mail/send", {"authorization": f"Bearer {keys.sendgrid_test}"},
         {"personalizations": [{"to": [{"email": EMAIL}], "cc": [{"email": EMAIL}]}],
          "from": {"email": EMAIL}, "subject": "s", "content": [{"type": "text/plain", "value": "v"}]}),
    ]
    statuses = []
    with httpx.Client(base_url=canary_gateway.url, timeout=10, trust_env=False) as http:
        for method, path, headers, body in sent:
            response = http.request(method, path, headers=headers, json=body)
            statuses.append(response.status_code)
            assert findings(response.text, f"{method} {path}") == [] or response.status_code < 400
        metrics = http.get("/metrics").text
    assert 401 in statuses and 400 in statuses  # the refusals did happen
    assert findings(metrics, "/metrics") == []
    assert findings(canary_gateway.log(), "gateway log") == []
