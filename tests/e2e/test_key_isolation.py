"""A key goes only to the provider its shape belongs to (security issue items 5 and 8; telling packs apart).

The real gateway serves Sent, SendGrid and a Blueticked stand-in (``blu``, tests/support/packs.py), all
mounted at ``""``. Sent and ``blu`` forward to the recording provider under their own base paths
(``/sent-up``, ``/blu-up``), so a record says which pack sent it; SendGrid forwards to an attacker
listener, which must receive nothing: a Sent or ``blu`` key that ended up in the SendGrid pack would be
verified there (``GET /v3/scopes``) and forwarded, as both were before.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE
from tests.support.attacker import Attacker, attacker_listener
from tests.support.envelope import error
from tests.support.packs import BLU_LIVE, BLU_TEST, with_blu
from tests.support.servers import Gateway, Provider

MESSAGE = {"to": ["+15555550100"], "text": "hi"}


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    with attacker_listener() as listener:
        yield listener


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Provider]:
    provider = Provider()
    provider.configure(valid_keys=[PASSTHROUGH_LIVE, BLU_LIVE, BLU_TEST], me_status=None)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def http(stand_in: Provider, attacker: Attacker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    policies = with_blu(tmp_path_factory.mktemp("packs"))
    gateway = Gateway(upstream=stand_in.url, policies=policies, env={
        "TESTMODE_PROXY_UPSTREAM_SENT": stand_in.url + "/sent-up",
        "TESTMODE_PROXY_UPSTREAM_BLU": stand_in.url + "/blu-up",
        "TESTMODE_PROXY_UPSTREAM_SENDGRID": attacker.url,
    }, log_file=tmp_path_factory.mktemp("gateway") / "gateway.log")
    with httpx.Client(base_url=gateway.url, timeout=15, trust_env=False) as client:
        yield client
    gateway.stop()


@pytest.fixture
def recorder(stand_in: Provider, attacker: Attacker) -> Iterator[Provider]:
    stand_in.clear()
    yield stand_in
    assert attacker.hits == [], "a request reached the SendGrid pack's upstream"


def sent_to(recorder: Provider) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in recorder.records()]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- item 5: a Sent key is sent to SendGrid

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v3/analytics/abc"),     # a path no pack declares (GET /v3/messages/{id} is a route now)
    ("POST", "/v3/messages"),         # a Sent route
    ("GET", "/v3/me"),
    ("POST", "/v3/mail/send"),        # SendGrid's route
    ("POST", "/v1/messages"),         # blu's route
    ("POST", "/sendgrid/v3/mail/send"),  # SendGrid's own prefix
])
def test_a_sent_key_in_authorization_is_refused_and_shown_to_nobody(
    http: httpx.Client, recorder: Provider, method: str, path: str
) -> None:
    response = http.request(method, path, headers=bearer(PASSTHROUGH_LIVE), json=MESSAGE)
    assert response.status_code == 401, response.text
    assert PASSTHROUGH_LIVE not in response.text
    assert sent_to(recorder) == []  # not verified with anyone, not forwarded to anyone


def test_without_a_pack_to_answer_for_the_refusal_is_problem_details_naming_what_each_takes(
    http: httpx.Client, recorder: Provider
) -> None:
    response = http.get("/v3/analytics/abc", headers=bearer(PASSTHROUGH_LIVE))  # a path no pack declares
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (401, "unauthorized")
    assert "sent takes x-api-key: sk_live_…, sk_test_…" in problem["detail"]
    assert "sendgrid takes authorization: Bearer SG.…" in problem["detail"]


def test_on_a_sent_route_the_refusal_is_sents_own_401(http: httpx.Client, recorder: Provider) -> None:
    err = error(http.post("/v3/messages", headers=bearer(PASSTHROUGH_LIVE), json=MESSAGE), 401, "AUTH_001")
    assert err["message"] == "Missing API key: send it in the x-api-key header."


def test_the_same_key_where_sent_takes_it_is_verified_by_sent_and_forwarded_to_sent(
    http: httpx.Client, recorder: Provider
) -> None:
    response = http.get("/v3/messages/abc", headers={"x-api-key": PASSTHROUGH_LIVE})
    assert response.status_code == 200
    assert response.json()["data"]["echo"]["path"] == "/sent-up/v3/messages/abc"
    assert sent_to(recorder)[-1] == ("GET", "/sent-up/v3/messages/abc")
    assert {path for _, path in sent_to(recorder)} <= {"/sent-up/v3/me", "/sent-up/v3/messages/abc"}


# ---------------------------------------------------------------- telling packs apart

@pytest.mark.parametrize("path", ["/v1/messages", "/v1/contacts", "/v3/mail/send"],
                         ids=["blu-route", "undeclared", "sendgrid-route"])
def test_a_blu_key_goes_to_the_blu_pack_only(http: httpx.Client, recorder: Provider, path: str) -> None:
    response = http.post(path, headers=bearer(BLU_LIVE), json=MESSAGE)
    assert response.status_code in (201, 202), response.text  # the stand-in's answers to a live send
    assert sent_to(recorder)[-1] == ("POST", "/blu-up" + path)
    assert {p for _, p in sent_to(recorder)} <= {"/blu-up/v3/me", "/blu-up" + path}


def test_a_blu_test_key_is_answered_by_the_gateway_and_only_verified_by_blu(
    http: httpx.Client, recorder: Provider
) -> None:
    response = http.post("/v1/messages", headers=bearer(BLU_TEST), json=MESSAGE)
    assert response.status_code == 202
    assert response.headers["x-test-mode"] == "true"
    assert response.json()["test"] is True
    assert sent_to(recorder) in ([], [("GET", "/blu-up/v3/me")])


@pytest.mark.parametrize("headers", [
    bearer("blu_live_short"),                  # a blu prefix, not blu's shape
    bearer("blu-live-" + "x" * 24),
    bearer("SG.not-a-sendgrid-key"),
    bearer("tok_" + "x" * 40),
    {"authorization": f"Basic {BLU_LIVE}"},
    {"x-api-key": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
])
def test_a_key_no_pack_claims_is_refused_on_an_undeclared_path(
    http: httpx.Client, recorder: Provider, headers: dict[str, str]
) -> None:
    response = http.post("/v1/anything", headers=headers, json=MESSAGE)
    assert (response.status_code, response.headers["content-type"]) == (401, "application/problem+json")
    assert sent_to(recorder) == []


def test_keys_of_two_packs_at_once_are_refused(http: httpx.Client, recorder: Provider) -> None:
    response = http.post("/v1/messages", headers={**bearer(BLU_LIVE), "x-api-key": PASSTHROUGH_LIVE}, json=MESSAGE)
    assert (response.status_code, response.json()["code"]) == (400, "ambiguous_credentials")
    assert sent_to(recorder) == []


# ---------------------------------------------------------------- item 8: a second credential

@pytest.mark.parametrize("headers", [
    [("x-api-key", PASSTHROUGH_LIVE), ("authorization", f"Bearer {PASSTHROUGH_LIVE}"),
     ("authorization", "Bearer sk_live_someone_elses_key_000")],
    [("x-api-key", PASSTHROUGH_LIVE), ("x-api-key", "sk_live_someone_elses_key_000")],
    [("x-api-key", PASSTHROUGH_LIVE), ("X_API_KEY", "sk_live_someone_elses_key_000")],
    [("x-api-key", PASSTHROUGH_LIVE), ("Authorization_", "Bearer sk_live_someone_elses_key_000")],
], ids=["authorization-twice", "key-twice", "underscore-key", "underscore-authorization"])
def test_a_second_credential_never_reaches_the_provider(
    http: httpx.Client, recorder: Provider, headers: list[tuple[str, str]]
) -> None:
    response = http.post("/v3/messages", headers=headers, json=MESSAGE)
    error(response, 400, "AUTH_003")
    assert sent_to(recorder) == []


@pytest.mark.parametrize(("headers", "status"), [
    ([*bearer(BLU_LIVE).items(), ("authorization", "Bearer blu_live_" + "o" * 24)], 400),
    ([*bearer(BLU_LIVE).items(), ("X_Custom", "1")], 400),
    ([*bearer(BLU_LIVE).items(), ("x-custom", "1")], 201),
])
def test_header_names_with_underscores_are_refused_whatever_they_say(
    http: httpx.Client, recorder: Provider, headers: list[tuple[str, str]], status: int
) -> None:
    response = http.post("/v1/contacts", headers=headers, json=MESSAGE)
    assert response.status_code == status, response.text
    forwarded = [r for r in recorder.records() if r["path"] == "/blu-up/v1/contacts"]
    assert len(forwarded) == (status == 201)
