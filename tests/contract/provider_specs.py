"""The providers' own API descriptions (tests/contract/specs/SOURCES.md), and what an answer of the gateway
looks like against them, with the differences the policy admits to (``provider:`` notes) set apart.

An answer is *conformant* when the description documents its operation and status and the body validates
against the documented schema (no body where it documents none). Where it does not, the difference is
*accepted* only when the policy says so beside the route: ``silent`` (nothing documented for the status, or
for the whole operation) or ``differs`` at exactly the JSON paths it lists. Anything else is *unexplained*,
and fails the contract tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator

from proxy.policy.contract import ProviderNote
from proxy.policy.model import Policy, Route
from tests.contract.client_routes import normalise

SPECS = Path(__file__).with_name("specs")
FILES = {"sendgrid": SPECS / "sendgrid" / "tsg_mail_v3.yaml", "sent": SPECS / "sent" / "sentdm.openapi.json"}
_NO_OPERATION = object()


@cache
def document(policy: str) -> dict[str, Any]:
    path = FILES[policy]
    doc: dict[str, Any] = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    return doc


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _operation(doc: dict[str, Any], route: Route) -> dict[str, Any] | None:
    wanted = normalise(route.path.text)
    for path, item in doc.get("paths", {}).items():
        if normalise(path) == wanted and route.method.lower() in item:
            operation: dict[str, Any] = item[route.method.lower()]
            return operation
    return None


def documented_response(policy: str, route: Route, status: int) -> Any:
    """The description's response object for the status (``_NO_OPERATION``, or None when not documented)."""
    doc = document(policy)
    operation = _operation(doc, route)
    if operation is None:
        return _NO_OPERATION
    responses = operation.get("responses", {})
    for key in (str(status), f"{status // 100}XX", "default"):
        if key in responses:
            return _resolve(doc, responses[key])
    return None


@cache
def _validator(policy: str, schema_json: str) -> Draft202012Validator:
    doc = document(policy)
    # The description's components travel with the schema, so its $refs ("#/components/…") resolve.
    return Draft202012Validator({**json.loads(schema_json), "components": doc.get("components", {})})


def _path(parts: Any) -> str:
    return ".".join("*" if isinstance(p, int) else str(p) for p in parts) or "$"


@dataclass
class Verdict:
    unexplained: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)


def judge(policy: Policy, route: Route, status: int, body: bytes | None) -> Verdict:
    """One answer of the gateway against the provider's description, with the policy's notes applied."""
    verdict = Verdict()
    contract = policy.contract
    assert contract is not None
    if policy.name not in FILES:  # no readable description (Blueticked: SOURCES.md): the contract alone holds
        return verdict
    note: ProviderNote | None = contract.note(route.id, status)
    if note is None:  # an operation the provider does not describe at all is noted on its success
        doc = contract.routes.get(route.id)
        notes = [a.provider for a in doc.answers.values() if a.provider] if doc is not None else []
        operation_note = next((n for n in notes if n.kind == "silent"), None)
    else:
        operation_note = note if note.kind == "silent" else None
    response = documented_response(policy.name, route, status)
    where = f"{policy.name} {route.id} {status}"
    if response is _NO_OPERATION or response is None:
        silent = note if response is None and note is not None and note.kind == "silent" else operation_note
        if silent is None:
            verdict.unexplained.append(f"{where}: the provider's description documents no such answer")
        else:
            verdict.accepted.add(f"{where}: silent: {silent.note}")
        return verdict
    if note is not None and note.kind == "silent":
        verdict.unexplained.append(f"{where}: noted as silent, but the description documents it (stale note)")
    schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is None:
        if body:
            verdict.unexplained.append(f"{where}: the description documents no body, the gateway sent one")
        return verdict
    if not body:
        verdict.unexplained.append(f"{where}: the description documents a JSON body, the gateway sent none")
        return verdict
    instance = orjson.loads(body)
    allowed = set(note.at) if note is not None and note.kind == "differs" else set()
    for error in _validator(policy.name, json.dumps(schema, sort_keys=True)).iter_errors(instance):
        path = _path(error.absolute_path)
        if path in allowed:
            verdict.accepted.add(f"{where}: differs at {path}: {note.note if note else ''}")
        else:
            verdict.unexplained.append(f"{where}: {path}: {error.message[:200]}")
    return verdict
