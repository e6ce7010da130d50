"""``testmode-proxy openapi POLICY`` (proxy/openapi.py): a pack's OpenAPI 3.1 description, from the policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from proxy.openapi import openapi, schema
from proxy.policy.contract import error_statuses
from proxy.policy.loader import load_policies
from tests.support.servers import POLICIES

COMMAND = Path(sys.executable).with_name("testmode-proxy")
PACKS = {p.name: p for p in load_policies(POLICIES).policies}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COMMAND), "openapi", *args], capture_output=True, text=True, timeout=60,
                          cwd=POLICIES.parent, check=False)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(v) for v in node.values() if not isinstance(v, str)))
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node))
    return set()


@pytest.mark.parametrize("target", ["sent", "policies/sent.yaml"])
def test_the_command_prints_the_description_by_name_or_file(target: str) -> None:
    result = run(target)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "sent through testmode-proxy"
    assert doc == json.loads(json.dumps(openapi(PACKS["sent"])))


def test_an_unknown_policy_is_exit_2() -> None:
    result = run("nope")
    assert (result.returncode, result.stdout) == (2, "")
    assert "no policy named 'nope'" in result.stderr


@pytest.mark.parametrize("name", list(PACKS))
def test_every_route_is_an_operation_with_every_status_the_gateway_writes(name: str) -> None:
    policy = PACKS[name]
    doc = openapi(policy)
    operations = {op["operationId"]: (path, method, op) for path, item in doc["paths"].items()
                  for method, op in item.items()}
    assert set(operations) == {r.id for r in policy.route_list}
    for route in policy.route_list:
        path, method, op = operations[route.id]
        assert (path, method) == (route.path.text, route.method.lower())
        parameters = [(p["in"], p["name"]) for p in op.get("parameters", [])]
        assert parameters[:len(route.path.names)] == [("path", n) for n in route.path.names]
        if route.method not in ("GET", "HEAD"):
            assert parameters[-1] == ("header", "Idempotency-Key")
        statuses = {int(s) for s in op["responses"]}
        assert {v.status for v in route.responses} <= statuses  # every synthesized answer is documented
        assert set(error_statuses()) <= statuses
        assert op["responses"]["401"]["content"]["application/json"]["schema"] == \
            schema({k: v for k, v in policy.contract.error.schema.items() if k not in ("$defs", "$schema")})  # type: ignore[union-attr]


@pytest.mark.parametrize("name", list(PACKS))
def test_references_resolve_and_the_wording_extensions_are_left_out(name: str) -> None:
    doc = openapi(PACKS[name])
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert not {k for k in _keys(doc["components"]) | _keys(doc["paths"]) if k.startswith("x-") and k != "x-test-mode"}
    # Each schema is valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    for value in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(value)


def test_refusals_and_keys_are_described() -> None:
    doc = openapi(PACKS["sent"])
    calls = doc["paths"]["/v3/voice/calls/{id}/hangup"]["post"]
    assert "not simulated" in calls["x-test-mode"]["refused"]
    assert "In test mode:" in calls["responses"]["404"]["description"]
    assert doc["components"]["securitySchemes"] == {"sent_key": {"type": "apiKey", "in": "header", "name": "x-api-key"}}
    sendgrid = openapi(PACKS["sendgrid"])
    assert sendgrid["components"]["securitySchemes"] == {"sendgrid_key": {"type": "http", "scheme": "bearer"}}
    send = sendgrid["paths"]["/v3/mail/send"]["post"]["responses"]
    assert "content" not in send["202"] and send["202"]["headers"]["X-Message-Id"]["required"] is True
    assert [s["url"] for s in sendgrid["servers"]] == ["/sendgrid", "/"]


def test_patterns_are_written_for_ecma_262() -> None:
    assert schema({"type": "string", "pattern": "^[a-z]+\\Z", "x-message": "m"}) == \
        {"type": "string", "pattern": "^[a-z]+$"}
    assert schema({"format": "e164"})["pattern"] == "^\\+[1-9][0-9]{1,14}$"
    assert schema({"properties": {"x-odd": {"$ref": "#/$defs/a"}}}) == \
        {"properties": {"x-odd": {"$ref": "#/components/schemas/a"}}}  # a property named x-… stays
