"""Unauthenticated traffic is not amplified to the provider (security issue item 3), through the real server.

* A key of no policy's shape costs no provider call at all.
* Verifications (keys with no cached verdict) are limited per client and for the whole gateway: past
  either, 429 in the provider's own format with ``Retry-After``; cached verdicts and issued keys are not.
* A provider that answers the check with 429 is left alone for a while: uncached keys get 503
  ``key_verification_unavailable`` at once, keys already verified keep working.

Each test starts its own gateway (the limits are state), in front of the recording provider for Sent
and an attacker listener for SendGrid, which must receive nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import PASSTHROUGH_LIVE, Keys
from tests.support.attacker import Attacker, attacker_listener
from tests.support.envelope import error, simulated
from tests.support.servers import Gateway, Provider

CONTACT = {"phone_number": "+15555550100"}
StartGateway = Callable[..., httpx.Client]


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    with attacker_listener() as listener:
        yield listener
        assert listener.hits == [], "a verification or a request reached the SendGrid pack's upstream"


@pytest.fixture
def start(provider: Provider, keys: Keys, attacker: Attacker,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartGateway]:
    """Start a gateway with the given TESTMODE_PROXY_* settings; a client for it."""
    started: list[tuple[Gateway, httpx.Client]] = []

    def run(**env: str) -> httpx.Client:
        gateway = Gateway(upstream=provider.url, keys_file=keys.file, env={
            "TESTMODE_PROXY_UPSTREAM_SENDGRID": attacker.url,
            **{f"TESTMODE_PROXY_{name.upper()}": value for name, value in env.items()},
        }, log_file=tmp_path_factory.mktemp("gateway") / "gateway.log")
        client = httpx.Client(base_url=gateway.url, timeout=15, trust_env=False)
        started.append((gateway, client))
        return client

    yield run
    for gateway, client in started:
        client.close()
        gateway.stop()


def fresh() -> str:
    """A key of Sent's shape that nobody has seen (the stand-in rejects it)."""
    return f"sk_live_{uuid.uuid4().hex}"


def checks(recorder: Provider) -> int:
    records = recorder.records()
    assert all((r["method"], r["path"]) == ("GET", "/v3/me") for r in records), records
    return len(records)


def post(http: httpx.Client, key: str, **headers: str) -> httpx.Response:
    return http.post("/v3/contacts", headers={"x-api-key": key, **headers}, json={**CONTACT, "test_mode": True})


JUNK = [
    {"x-api-key": "invalid-key"},
    {"x-api-key": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"},
    {"x-api-key": "sk_live_" + "x" * 20 + "$"},
    {"x-api-key": "SG." + "a" * 22 + "." + "b" * 43},
    {"authorization": "Bearer sk_live_" + "x" * 24},
    {"authorization": "Bearer blu_live_" + "x" * 24 + "$"},  # Blueticked's prefix, not its shape
    {"authorization": "Bearer junk-bearer-token"},
]


def test_keys_of_no_policys_shape_cost_no_provider_call(start: StartGateway, recorder: Provider) -> None:
    http = start()
    for headers in JUNK:
        for i in range(20):  # the issue: 20 junk keys gave 20 provider GETs
            varied = {name: f"{value}{i:02d}" for name, value in headers.items()}  # a new key each time
            response = http.post("/v3/messages/abc" if i % 2 else "/v3/contacts", headers=varied,
                                 json={**CONTACT, "test_mode": True})
            assert response.status_code == 401, (headers, response.text)
    assert recorder.records() == []


def test_verifications_are_limited_per_client_and_x_forwarded_for_is_not_trusted(
    start: StartGateway, recorder: Provider, keys: Keys
) -> None:
    http = start(verify_client_burst="3", verify_client_per_minute="0.001")
    assert post(http, PASSTHROUGH_LIVE).status_code == 201  # verified: 1 of 3
    answers = [post(http, fresh(), **{"x-forwarded-for": f"203.0.113.{i}"}) for i in range(19)]
    assert [a.status_code for a in answers] == [401, 401] + [429] * 17
    assert checks(recorder) == 3
    limited = answers[-1]
    err = error(limited, 429, "GATEWAY_006")  # Sent's envelope; the clients retry 429 after Retry-After
    assert err["outcome"] == "not_sent"
    assert int(limited.headers["retry-after"]) > 60
    # A cached verdict, a rejected key still in the negative cache and an issued key cost nothing.
    for _ in range(5):
        simulated(post(http, PASSTHROUGH_LIVE), 201)
        error(post(http, answers[0].request.headers["x-api-key"]), 401, "AUTH_001")
        simulated(post(http, keys.sent_live), 201)
    assert checks(recorder) == 3


def test_verifications_are_limited_for_the_whole_gateway(start: StartGateway, recorder: Provider) -> None:
    http = start(trusted_proxies="127.0.0.1", verify_client_burst="3", verify_client_per_minute="0.001",
                 verify_global_burst="5", verify_global_per_minute="0.001")
    statuses = {client: [post(http, fresh(), **{"x-forwarded-for": client}).status_code for _ in range(4)]
                for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3")}
    # Each client (named by a trusted proxy) has its own bucket of 3; all of them share one of 5.
    assert statuses == {"203.0.113.1": [401, 401, 401, 429], "203.0.113.2": [401, 401, 429, 429],
                        "203.0.113.3": [429, 429, 429, 429]}
    assert checks(recorder) == 5


def test_a_provider_429_pauses_verification_without_locking_out_verified_keys(
    start: StartGateway, recorder: Provider
) -> None:
    http = start()
    simulated(post(http, PASSTHROUGH_LIVE), 201)
    recorder.configure(me_status=429)
    try:
        answers = [post(http, fresh()) for _ in range(10)]
        for answer in answers:
            err = error(answer, 503, "GATEWAY_005")  # "cannot say", not "invalid": retry, don't rotate the key
            assert err["outcome"] == "not_sent"
            assert 1 <= int(answer.headers["retry-after"]) <= 5
        assert checks(recorder) == 2  # the first check, then none while the provider asked for a pause
        simulated(post(http, PASSTHROUGH_LIVE), 201)  # verified before: still served from the cache
        assert checks(recorder) == 2
    finally:
        recorder.configure(me_status=None)
