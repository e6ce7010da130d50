"""A policy's response contract: what the gateway can answer on each route, as JSON Schemas.

One description serves three readers (issue 14, issue 15): the contract tests (tests/contract/) check every
synthesized success and every error against it and against the provider's own published description, the
drift check (:mod:`proxy.drift`) checks a sample of live answers against it, and ``testmode-proxy openapi``
prints it as an OpenAPI document (:mod:`proxy.openapi`).

Policy text (policies/README.md, ``contract`` and ``routes[].responses``)::

    contract:
      source: where the provider's own API description is published
      drift_sample_rate: 0.01          # share of live answers checked; 0 turns it off
      errors:
        schema: {$ref: "#/$defs/error"}  # every error body of the dialect
        provider:                        # where the provider's description is silent or wrong
          "415": {silent: why}
          "400": {differs: why, at: ["errors.*.help"]}
    routes:
      - responses:
          "200": {description: …, schema: {…}, headers: [X-Message-Id], provider: {silent: why}}

Schemas are draft-07 and reach the policy's ``schemas:`` as ``#/$defs/<name>``, as request schemas do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from proxy.errors import DIALECT

DEFAULT_SAMPLE_RATE = 0.01

# Every engine code a provider route can be answered with, and its statuses (the catalogue in
# proxy/errors.py). The gateway can write any of them on any route (a 401 needs no route, a 502 only a
# forward), so each operation documents them all.
ENGINE_STATUSES: dict[str, tuple[int, ...]] = DIALECT


def error_statuses() -> tuple[int, ...]:
    return tuple(sorted({s for statuses in ENGINE_STATUSES.values() for s in statuses}))


class ContractError(ValueError):
    """A contract that cannot be used; ``str()`` is ``key.path: message`` (the loader adds the file)."""


@dataclass(frozen=True, slots=True)
class ProviderNote:
    """Where the provider's published description does not describe what the gateway (and the provider) do.

    ``silent``: it documents no body for the status; ``differs``: it does, wrongly, at the JSON paths ``at``
    (``errors.*.help``), and nowhere else.
    """

    kind: Literal["silent", "differs"]
    note: str
    at: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Documented:
    """One status of one route: its body's schema (None: no body) and the headers it always carries."""

    status: int
    description: str
    schema: dict[str, Any] | None  # standalone: the policy's schemas under $defs
    headers: tuple[str, ...]
    provider: ProviderNote | None
    validator: Draft7Validator | None


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """What a route documents: its request schema and summary as written, why it is refused in test mode
    (``refused_in_test_mode``), and its answers by status."""

    summary: str | None
    request_schema: dict[str, Any] | bool | None
    refusal: str | None
    answers: dict[int, Documented]


@dataclass(frozen=True, slots=True)
class Contract:
    description: str | None
    source: str | None
    sample_rate: float
    definitions: dict[str, Any]  # the policy's schemas, as written
    error: Documented | None  # status 0: the schema of every error body
    error_notes: dict[int, ProviderNote]
    routes: dict[str, RouteDoc]

    def documented(self, route_id: str, status: int) -> Documented | None:
        """The documented answer for a status of a route: the route's own, else the dialect's error body."""
        route = self.routes.get(route_id)
        own = route.answers.get(status) if route is not None else None
        if own is not None or status < 400:
            return own
        return self.error

    def note(self, route_id: str, status: int) -> ProviderNote | None:
        route = self.routes.get(route_id)
        own = route.answers.get(status) if route is not None else None
        if own is not None and own.provider is not None:
            return own.provider
        return self.error_notes.get(status)


def _standalone(schema: Any, definitions: Mapping[str, Any]) -> dict[str, Any]:
    full: dict[str, Any] = {"$schema": "http://json-schema.org/draft-07/schema#", **schema}
    if definitions:
        full["$defs"] = {**definitions, **full.get("$defs", {})}
    return full


def _validator(schema: dict[str, Any], where: str) -> Draft7Validator:
    try:
        Draft7Validator.check_schema(schema)
        validator = Draft7Validator(schema)
        validator.is_valid(None)  # resolves the top-level $ref now: a dangling one fails at load
    except SchemaError as exc:
        raise ContractError(f"{where}: {exc.message}") from exc
    except Exception as exc:  # jsonschema's referencing errors have no public common base
        raise ContractError(f"{where}: unresolvable $ref ({exc})") from exc
    return validator


def _note(node: Mapping[str, Any], where: str) -> ProviderNote:
    if "silent" in node:
        return ProviderNote("silent", str(node["silent"]))
    return ProviderNote("differs", str(node["differs"]), tuple(node.get("at", ())))


def _documented(status: int, node: Mapping[str, Any], definitions: Mapping[str, Any], where: str) -> Documented:
    schema = _standalone(node["schema"], definitions) if "schema" in node else None
    return Documented(
        status=status,
        description=str(node.get("description", "")),
        schema=schema,
        headers=tuple(node.get("headers", ())),
        provider=_note(node["provider"], f"{where}.provider") if "provider" in node else None,
        validator=_validator(schema, f"{where}.schema") if schema is not None else None,
    )


def compile_contract(doc: Mapping[str, Any]) -> Contract:
    """The contract of a policy document already checked against the policy format."""
    definitions: dict[str, Any] = dict(doc.get("schemas", {}))
    node = doc.get("contract", {})
    errors = node.get("errors", {})
    error = None
    if "schema" in errors:
        error = _documented(0, {"description": "An error, in the provider's format.", "schema": errors["schema"]},
                            definitions, "contract.errors")
    notes = {int(s): _note(n, f"contract.errors.provider.{s}") for s, n in errors.get("provider", {}).items()}
    routes: dict[str, RouteDoc] = {}
    for index, route in enumerate(doc.get("routes", [])):
        responses = route.get("responses", {})
        routes[route["id"]] = RouteDoc(
            summary=route.get("summary"),
            request_schema=route.get("schema"),
            refusal=route.get("refused_in_test_mode"),
            answers={int(status): _documented(int(status), spec, definitions, f"routes.{index}.responses.{status}")
                     for status, spec in responses.items()},
        )
    return Contract(
        description=doc.get("description"),
        source=node.get("source"),
        sample_rate=float(node.get("drift_sample_rate", DEFAULT_SAMPLE_RATE)),
        definitions=definitions,
        error=error,
        error_notes=notes,
        routes=routes,
    )
