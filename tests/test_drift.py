"""proxy/drift.py: sampling at the policy's rate, the check off the request path, the counts and the log line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from jsonschema import Draft7Validator
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.context import RequestContext
from proxy.drift import MAX_BODY, MAX_PATHS, DriftCheck, Finding, Kept, findings
from proxy.policy.loader import load_policies
from proxy.policy.model import PolicySet
from tests.support.servers import POLICIES

QUEUED = {"status": "QUEUED", "template_id": None, "template_name": None,
          "recipients": [{"to": "+15555550100", "message_id": "m-1", "channel": "sms", "body": "hi"}]}


def _answer(data: dict[str, Any]) -> bytes:
    return orjson.dumps({"success": True, "data": data, "error": None,
                         "meta": {"request_id": "req_1", "timestamp": "2026-01-01T00:00:00Z", "version": "v3"}})


def _policies(tmp_path: Path, rate: float) -> PolicySet:
    """The shipped Sent policy with its sample rate changed."""
    text = (POLICIES / "sent.yaml").read_text().replace("drift_sample_rate: 0.01", f"drift_sample_rate: {rate}")
    (tmp_path / "sent.yaml").write_text(text)
    return load_policies(tmp_path)


def _ctx(policies: PolicySet, method: str = "POST", path: str = "/v3/messages") -> RequestContext:
    policy = policies.policies[0]
    match = policy.match(method, path)
    assert match is not None
    return RequestContext("s", "req_s", policy=policy, route=match[0])


def _drift(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == "testmode_proxy_contract_drift_total":
                found[(sample.labels["policy"], sample.labels["route"], sample.labels["path"])] = sample.value
    return found


def test_the_shipped_rate_is_one_percent() -> None:
    sent = load_policies(POLICIES).by_name("sent")
    assert sent is not None and sent.contract is not None
    assert sent.contract.sample_rate == 0.01


def test_a_kept_body_is_dropped_past_the_limit() -> None:
    kept = Kept()
    kept.add(b"x" * MAX_BODY)
    assert kept.body() == b"x" * MAX_BODY
    kept.add(b"y")
    assert kept.body() is None and kept.parts == []


@pytest.mark.parametrize(("draws", "rate", "queued"), [
    ([0.0, 0.5, 0.999], 1.0, 3), ([0.0, 0.0099, 0.01, 0.5], 0.01, 2), ([0.0, 0.0], 0, 0),
])
def test_answers_are_sampled_at_the_policys_rate(tmp_path: Path, draws: list[float], rate: float,
                                                 queued: int) -> None:
    draw = iter(draws)
    policies = _policies(tmp_path, rate)
    check = DriftCheck(policies, draw=lambda: next(draw))
    assert sum(check.sample(_ctx(policies)) for _ in draws) == queued


def test_a_renamed_field_and_a_string_for_a_number_are_counted_by_path_at_the_next_scrape(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies, registry)
    renamed = {**QUEUED, "recipients": [{"phone": "+1555", "message_id": "m", "channel": "sms", "body": None}]}
    check.offer(_ctx(policies), 202, _answer(renamed))
    created = {"id": "m", "phone": "+1555", "template_id": "t", "channel": "sms", "status": "pending",
               "price": "0.01", "created_at": "2026-01-01T00:00:00Z"}
    check.offer(_ctx(policies), 201, _answer(created))
    check.offer(_ctx(policies), 202, _answer(QUEUED))  # as documented: no drift
    assert len(check.queue) == 3  # nothing was checked on the request path
    assert _drift(registry) == {
        ("sent", "messages.send", "$.data.recipients[*].to"): 1.0,
        ("sent", "messages.send", "$.data.price"): 1.0,
    }


def test_errors_are_checked_against_the_dialects_schema(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies, registry)
    changed = {"success": False, "data": None, "error": {"code": 7, "message": "m", "details": None, "doc_url": ""},
               "meta": {"request_id": "r", "timestamp": "2026-01-01T00:00:00Z", "version": "v3"}}
    check.offer(_ctx(policies), 400, orjson.dumps(changed))
    check.offer(_ctx(policies), 502, b"<html>bad gateway</html>")
    assert _drift(registry) == {("sent", "messages.send", "$.error.code"): 1.0,
                                ("sent", "messages.send", "$"): 1.0}


def test_the_log_line_names_the_path_and_the_expected_type_never_the_value(tmp_path: Path) -> None:
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies)
    secret = "+15555550123-the-value"
    created = {"id": "m", "phone": "+1555", "template_id": "t", "channel": "sms", "status": "pending",
               "price": secret, "created_at": "2026-01-01T00:00:00Z"}
    check.offer(_ctx(policies), 201, _answer(created))
    with structlog.testing.capture_logs() as logs:
        check.drain()
    assert logs == [{"event": "contract_drift", "log_level": "warning", "policy": "sent", "route": "messages.send",
                     "status": 201, "path": "$.data.price", "expected": "number"}]
    assert secret not in json.dumps(logs)


def test_findings_name_each_missing_property_and_the_expected_type() -> None:
    schema = {"type": "object", "required": ["a", "b"],
              "properties": {"n": {"type": ["number", "null"]}, "k": {"const": True}, "e": {"enum": [1, 2]},
                             "odd key": {"type": "string"}}}
    assert findings(Draft7Validator(schema), {"n": "x", "k": False, "e": 3, "odd key": 1}) == [
        Finding("$.a", "present"), Finding("$.b", "present"), Finding("$.e", "enum"),
        Finding("$.k", "const true"), Finding("$.n", "number|null"), Finding('$["odd key"]', "string"),
    ]


def test_path_labels_are_bounded_per_route(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies, registry)
    details = {f"field_{i}": "not a list" for i in range(MAX_PATHS + 10)}
    body = {"success": False, "data": None, "error": {"code": "C", "message": "m", "details": details, "doc_url": ""},
            "meta": {"request_id": "r", "timestamp": "2026-01-01T00:00:00Z", "version": "v3"}}
    check.offer(_ctx(policies), 400, orjson.dumps(body))
    counted = _drift(registry)
    assert len(counted) == MAX_PATHS + 1
    assert counted[("sent", "messages.send", "(other)")] == 10


def test_a_full_queue_drops_the_sample_and_counts_it(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies, registry, queue_limit=2)
    for _ in range(5):
        check.offer(_ctx(policies), 202, _answer(QUEUED))
    assert len(check.queue) == 2
    assert check.checks[("sent", "dropped")] == 3


async def test_the_background_task_checks_what_is_queued_and_close_drains_the_rest(tmp_path: Path) -> None:
    policies = _policies(tmp_path, 1.0)
    check = DriftCheck(policies)
    await check.start()
    check.offer(_ctx(policies), 202, _answer({**QUEUED, "status": 1}))
    for _ in range(10):
        await asyncio.sleep(0)
        if not check.queue:
            break
    assert not check.queue
    assert check.drift == {("sent", "messages.send", "$.data.status"): 1.0}
    check.offer(_ctx(policies), 202, _answer({**QUEUED, "status": 2}))
    await check.close()
    assert not check.queue and check.drift[("sent", "messages.send", "$.data.status")] == 2.0
