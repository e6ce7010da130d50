"""``testmode-proxy openapi POLICY``: an OpenAPI 3.1 description of a policy pack, generated from the policy.

Everything comes from the compiled policy (issue 15): each route is an operation (its id the operationId),
its body schema the request body, its documented answers (``routes[].responses``) the successes, and every
status the gateway can write an error with (:data:`proxy.policy.contract.ENGINE_STATUSES`) an error in the
dialect's schema (``contract.errors.schema``). The policy's ``schemas:`` become ``components.schemas``.
Wording extensions of the policy format (``x-message``, ``x-help`` …) are left out: they describe the
gateway's messages, not the API. Users read it to see what a pack answers; the contract tests feed it to
Schemathesis (tests/contract/test_schemathesis.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.policy.contract import ENGINE_STATUSES, Contract, Documented, compile_contract
from proxy.policy.idempotency import MAX_KEY_LENGTH
from proxy.policy.model import Policy
from proxy.verdict import SAFE_METHODS

_DEFS = "#/$defs/"
_COMPONENTS = "#/components/schemas/"
# Keywords whose value is a map of names to schemas: their keys are names, never keywords.
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependencies"})
_E164 = "^\\+[1-9][0-9]{1,14}$"  # proxy/policy/validation.py FORMATS["e164"], in ECMA-262 form
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
            422: "Unprocessable Content", 429: "Too Many Requests",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def schema(node: Any) -> Any:
    """A policy schema as an OpenAPI one: ``#/$defs/`` refs into components, wording extensions dropped."""
    if isinstance(node, list):
        return [schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key == "$schema":
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS):
            out[key] = _COMPONENTS + value[len(_DEFS):]
        elif key == "pattern" and isinstance(value, str):
            # Policies write Python's end anchor \Z; OpenAPI patterns are ECMA-262, whose $ (no m flag)
            # means the same.
            out[key] = value[:-2] + "$" if value.endswith("\\Z") else value
        elif key in _NAME_MAPS and isinstance(value, dict):
            out[key] = {name: schema(sub) for name, sub in value.items()}
        else:
            out[key] = schema(value)
    if out.get("format") == "e164" and "pattern" not in out:  # a format of the gateway's own, as a pattern
        out["pattern"] = _E164
    return out


def _error_codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for code, statuses in ENGINE_STATUSES.items():
        for status in statuses:
            by_status.setdefault(status, []).append(code)
    return dict(sorted(by_status.items()))


def _answer(documented: Documented) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": documented.description or "Answered."}
    if documented.schema is not None:
        body = {k: v for k, v in documented.schema.items() if k not in ("$defs", "$schema")}
        answer["content"] = {"application/json": {"schema": schema(body)}}
    if documented.headers:
        answer["headers"] = {name: {"required": True, "schema": {"type": "string"}} for name in documented.headers}
    return answer


def _idempotency_key(policy: Policy) -> dict[str, Any]:
    """The Idempotency-Key header every mutation takes (proxy/stages/idempotency.py)."""
    spec = policy.idempotency
    key: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                           "pattern": f"^(?:{spec.key_pattern.pattern if spec.key_pattern else '[!-~]+'})$"}
    return {"name": spec.name, "in": "header", "required": False, "schema": key,
            "description": f"A retry with the same key and body gets the first answer again; {spec.key_rule}."}


def _operation(policy: Policy, contract: Contract, route_id: str, method: str, names: tuple[str, ...],
               security: str) -> dict[str, Any]:
    doc = contract.routes.get(route_id)
    operation: dict[str, Any] = {"operationId": route_id, "security": [{security: []}]}
    if doc is not None and doc.summary:
        operation["description"] = doc.summary
    if doc is not None and doc.refusal:
        operation["x-test-mode"] = {"refused": doc.refusal}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names
    ]
    if method not in SAFE_METHODS:
        parameters.append(_idempotency_key(policy))
    if parameters:
        operation["parameters"] = parameters
    if doc is not None and isinstance(doc.request_schema, dict):
        operation["requestBody"] = {
            "required": False, "content": {"application/json": {"schema": schema(doc.request_schema)}},
        }
    responses: dict[str, Any] = {}
    for status, documented in sorted((doc.answers if doc is not None else {}).items()):
        responses[str(status)] = _answer(documented)
    error = contract.error
    for status, codes in _error_codes_by_status().items():
        if str(status) in responses:
            continue
        text = f"{_REASONS.get(status, 'Error')}, in {policy.name}'s error format ({', '.join(codes)})."
        if status == 404 and doc is not None and doc.refusal:
            text += f" In test mode: {doc.refusal}"
        responses[str(status)] = _answer(Documented(status, text, error.schema if error else None, (), None, None))
    operation["responses"] = responses
    return operation


def _security(policy: Policy) -> dict[str, Any]:
    if policy.keys.scheme == "bearer":
        return {"type": "http", "scheme": "bearer"}
    return {"type": "apiKey", "in": "header", "name": policy.keys.header}


def openapi(policy: Policy) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one compiled policy."""
    contract = policy.contract or compile_contract({})
    security = f"{policy.name}_key"
    paths: dict[str, dict[str, Any]] = {}
    for route in policy.route_list:
        paths.setdefault(route.path.text, {})[route.method.lower()] = _operation(
            policy, contract, route.id, route.method, route.path.names, security)
    description = contract.description or ""
    if contract.source:
        description += f"\n\nThe provider's own description: {contract.source}."
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{policy.name} through testmode-proxy",
            "version": "1",
            "description": (description + "\n\nGenerated by `testmode-proxy openapi` from the policy "
                            f"{Path(policy.source).name}.").strip(),
        },
        "servers": [{"url": prefix or "/"} for prefix in policy.prefixes],
        "paths": paths,
        "components": {
            "schemas": {name: schema(value) for name, value in contract.definitions.items()},
            "securitySchemes": {security: _security(policy)},
        },
    }
