"""Contract drift through the real server (issue 14): a provider whose answers changed shape is counted on
/metrics by the next scrape, at a 100 % sample rate, by policy, route and JSON path; the log names the path
and the expected type, never the value."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PROVIDER_CREDENTIAL, Keys
from tests.support.servers import POLICIES, Gateway, Provider

META = {"request_id": "req_live_1", "timestamp": "2026-01-01T00:00:00Z", "version": "v3"}
CONTACT = {"id": "c-1", "phone_number": "+15555550100", "format_e164": "+15555550100",
           "available_channels": "sms", "default_channel": "sms", "opt_out": False, "is_inherited": False,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
VALUE = "+15555550199-private"


@pytest.fixture(scope="module")
def changed_provider() -> Iterator[Provider]:
    stand_in = Provider()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def sampling_gateway(changed_provider: Provider, keys: Keys, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Gateway]:
    policies = tmp_path_factory.mktemp("policies")
    for file in POLICIES.glob("*.yaml"):
        shutil.copy(file, policies / file.name)
    sent = policies / "sent.yaml"
    sent.write_text(sent.read_text().replace("drift_sample_rate: 0.01", "drift_sample_rate: 1"))
    gateway = Gateway(upstream=changed_provider.url, keys_file=keys.file, policies=policies,
                      env={"TESTMODE_PROXY_CREDENTIAL_SENT": PROVIDER_CREDENTIAL},
                      log_file=tmp_path_factory.mktemp("drift") / "gateway.log")
    yield gateway
    gateway.stop()


def _drift(gateway: Gateway) -> dict[tuple[str, str, str], float]:
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    return {(s.labels["policy"], s.labels["route"], s.labels["path"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "testmode_proxy_contract_drift_total"}


def test_a_changed_shape_is_counted_by_the_next_scrape_and_logged_without_its_value(
    sampling_gateway: Gateway, changed_provider: Provider, keys: Keys
) -> None:
    # The provider renamed format_e164 and now sends opt_out as a string.
    changed = {k: v for k, v in CONTACT.items() if k != "format_e164"} | {"e164": VALUE, "opt_out": "no"}
    changed_provider.configure(script=[{"status": 201, "body": {
        "success": True, "data": changed, "error": None, "meta": META}}])
    assert _drift(sampling_gateway) == {}
    response = httpx.post(sampling_gateway.url + "/v3/contacts", json={"phone_number": "+15555550100"},
                          headers={"x-api-key": keys.sent_live}, timeout=10)
    assert response.status_code == 201
    assert response.json()["data"]["opt_out"] == "no"  # passed through untouched
    assert _drift(sampling_gateway) == {("sent", "contacts.create", "$.data.opt_out"): 1.0}
    lines = [json.loads(line) for line in sampling_gateway.log().splitlines() if "contract_drift" in line]
    assert [(line["path"], line["expected"]) for line in lines] == [("$.data.opt_out", "boolean")]
    assert VALUE not in sampling_gateway.log() and '"no"' not in json.dumps(lines)


def test_a_missing_field_is_counted_at_its_path(sampling_gateway: Gateway, changed_provider: Provider,
                                                keys: Keys) -> None:
    changed = {k: v for k, v in CONTACT.items() if k != "default_channel"}
    changed_provider.configure(script=[{"status": 200, "body": {
        "success": True, "data": changed, "error": None, "meta": META}}])
    response = httpx.patch(sampling_gateway.url + "/v3/contacts/c-1", json={"opt_out": True},
                           headers={"x-api-key": keys.sent_live}, timeout=10)
    assert response.status_code == 200
    assert _drift(sampling_gateway)[("sent", "contacts.update", "$.data.default_channel")] == 1.0


def test_an_answer_as_documented_is_not_drift(sampling_gateway: Gateway, changed_provider: Provider,
                                              keys: Keys) -> None:
    changed_provider.configure(script=[{"status": 200, "body": {
        "success": True, "data": {"signing_secret": "whsec_x"}, "error": None, "meta": META}}])
    before = _drift(sampling_gateway)
    response = httpx.post(sampling_gateway.url + "/v3/webhooks/w-1/rotate-secret", json={},
                          headers={"x-api-key": keys.sent_live}, timeout=10)
    assert response.status_code == 200
    assert _drift(sampling_gateway) == before
    checks = {s.labels["result"]: s.value for family in text_string_to_metric_families(
        httpx.get(sampling_gateway.url + "/metrics", timeout=10).text) for s in family.samples
        if s.name == "testmode_proxy_contract_checks_total" and s.labels["policy"] == "sent"}
    assert checks["ok"] >= 1


def test_the_shipped_policies_sample_one_percent() -> None:
    for file in POLICIES.glob("*.yaml"):
        assert "drift_sample_rate: 0.01" in file.read_text(), file.name
