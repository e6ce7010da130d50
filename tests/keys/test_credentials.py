"""Credential headers a provider could read differently from the gateway are refused (security issue item 8).

Driven through the *route* stage, which calls the check once the policy is known; the next app must never
be called for a refused request.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet
from proxy.stages.route import RouteStage
from tests.stages.harness import harness

ROOT = Path(__file__).resolve().parents[2]
SENT = "sk_live_" + "s" * 24
SENT_OTHER = "sk_live_" + "o" * 24
SENDGRID = "SG." + "a" * 22 + "." + "b" * 43
Headers = list[tuple[str, str]]


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(ROOT / "policies")


async def call(policies: PolicySet, path: str, headers: Headers) -> tuple[int, dict[str, object], int, str]:
    client, terminal = harness(partial(RouteStage, policies=policies))
    async with client:
        response = await client.post(path, headers=headers)
    return response.status_code, response.json(), terminal.calls, response.headers["content-type"]


@pytest.mark.parametrize(("path", "headers", "code"), [
    # the key header twice, whatever the values or the spelling of the name
    ("/v3/messages", [("x-api-key", SENT), ("x-api-key", SENT_OTHER)], "AUTH_003"),
    ("/v3/messages", [("x-api-key", SENT), ("X-API-KEY", SENT)], "AUTH_003"),
    # a conflicting credential header twice: only its first value would be compared
    ("/v3/messages", [("x-api-key", SENT), ("authorization", f"Bearer {SENT}"), ("authorization", "Bearer x")],
     "AUTH_003"),
    # look-alikes of a credential header
    ("/v3/messages", [("x-api-key", SENT), ("X_API_KEY", SENT_OTHER)], "AUTH_003"),
    ("/v3/messages", [("x_api_key", SENT)], "AUTH_003"),
    ("/v3/messages", [("x-api-key", SENT), ("Authorization_", f"Bearer {SENT_OTHER}")], "AUTH_003"),
    ("/v3/messages", [("x-api-key", SENT), ("x-api_key", SENT_OTHER)], "AUTH_003"),
    # any other name with an underscore (nginx's underscores_in_headers off)
    ("/v3/messages", [("x-api-key", SENT), ("x-profile_id", "p1")], "VALIDATION_001"),
])
async def test_sent_refuses_ambiguous_credential_headers_in_its_own_format(
    policies: PolicySet, path: str, headers: Headers, code: str
) -> None:
    status, body, calls, _ = await call(policies, path, headers)
    assert (status, body["error"]["code"], calls) == (400, code, 0), body  # type: ignore[index]


@pytest.mark.parametrize("headers", [
    [("authorization", f"Bearer {SENDGRID}"), ("authorization", "Bearer SG.gwlive.other")],
    [("authorization", f"Bearer {SENDGRID}"), ("Authorization_", "Bearer SG.gwlive.other")],
    # a Sent key in Sent's key header is never sent to SendGrid, not even beside a SendGrid key
    [("authorization", f"Bearer {SENDGRID}"), ("x-api-key", SENT)],
    [("authorization", f"Bearer {SENDGRID}"), ("x-api-key", "sk_live_gw_issued_sent_key")],
], ids=["authorization-twice", "authorization-lookalike", "sent-key-beside", "issued-sent-key-beside"])
@pytest.mark.parametrize("prefix", ["", "/sendgrid"])
async def test_sendgrid_refuses_them_too(policies: PolicySet, headers: Headers, prefix: str) -> None:
    status, body, calls, _ = await call(policies, prefix + "/v3/mail/send", headers)
    assert (status, calls) == (400, 0)
    if prefix:  # at "" the two keys are two claims: refused before any policy is chosen (problem details)
        assert set(body) == {"errors"}


async def test_an_underscore_header_explains_a_refusal_no_policy_could_be_chosen_for(policies: PolicySet) -> None:
    status, body, calls, content_type = await call(policies, "/v9/anything", [("X_API_KEY", SENT)])
    assert (status, body["code"], calls) == (400, "ambiguous_credentials", 0)
    assert content_type == "application/problem+json"
    assert "X_API_KEY".lower() in str(body["detail"]) and "x-api-key" in str(body["detail"])


@pytest.mark.parametrize(("path", "headers"), [
    ("/v3/messages", [("x-api-key", SENT)]),
    ("/v3/messages", [("x-api-key", SENT), ("authorization", f"Bearer {SENT}")]),  # auth compares the two
    ("/v3/messages", [("x-api-key", SENT), ("x-test_mode", "true")]),  # the testmode stage's own 400, later
    ("/v3/messages", [("x-api-key", SENT), ("accept", "a"), ("accept", "b")]),  # not a credential header
    ("/sendgrid/v3/mail/send", [("authorization", f"Bearer {SENDGRID}"), ("x-api-key", "not-a-sent-key")]),
    ("/sendgrid/v3/mail/send", [("authorization", f"Bearer {SENDGRID}"), ("on-behalf-of", "subuser")]),
])
async def test_ordinary_headers_pass(policies: PolicySet, path: str, headers: Headers) -> None:
    status, _, calls, _ = await call(policies, path, headers)
    assert (status, calls) == (299, 1)
