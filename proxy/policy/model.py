"""Compiled policy objects: immutable, built once at load, only looked up on the request path."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from proxy.keys.shapes import KeyShape
from proxy.policy.contract import Contract
from proxy.policy.idempotency import DEFAULT as DEFAULT_IDEMPOTENCY
from proxy.policy.idempotency import IdempotencySpec
from proxy.policy.paths import PathTable, PathTemplate
from proxy.policy.template import Env, Render
from proxy.policy.validation import BodyValidator, FieldStyle

if TYPE_CHECKING:
    from proxy.sandbox.spec import SandboxSpec
    from proxy.webhooks.policy import WebhookSpec

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class ResponseVariant:
    """One synthesized answer; the first variant whose ``when`` holds is used."""

    when: Callable[[Env], bool] | None
    status: int
    headers: Render | None
    body: Render | None  # None: no body (204)


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    method: str
    path: PathTemplate
    scope: str
    validator: BodyValidator
    responses: tuple[ResponseVariant, ...]
    max_body_bytes: int | None = None

    def response_for(self, env: Env) -> ResponseVariant | None:
        for variant in self.responses:
            if variant.when is None or variant.when(env):
                return variant
        return None


@dataclass(frozen=True, slots=True)
class BodyTrigger:
    """A body flag that must be a JSON boolean where present: ``true`` is test, ``false`` live."""

    name: str  # dotted path, as written in the policy
    path: tuple[str, ...]
    require_when_parent_present: bool
    message: str | None
    field: str | None = None  # reported for every error of this flag; None: the path where it went wrong
    top_level: str | None = dataclasses.field(init=False)  # the key, when the flag is a top-level one
    label: str = dataclasses.field(init=False)  # the trigger's name in logs: ``body:<name>``

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_level", self.path[0] if len(self.path) == 1 else None)
        object.__setattr__(self, "label", f"body:{self.name}")


@dataclass(frozen=True, slots=True)
class FlagKey:
    """One key on a body trigger's path, with the keys below it: every trigger's path as one tree."""

    name: str  # as the policy spells it
    folded: str  # proxy.policy.flagnames.fold(name): what every spelling a provider may read as it shares
    exact: bytes  # b'"name"', as it appears in a body
    token: bytes  # b'"folded"', as any such spelling appears in a body's folded bytes (FOLD_BYTES)
    below: tuple[FlagKey, ...] = ()


@dataclass(frozen=True, slots=True)
class FlagPaths:
    """The keys on body triggers' paths, compiled for the body stage's check that each is given once and
    spelled exactly (proxy/flagkeys.py)."""

    keys: tuple[FlagKey, ...] = ()
    folded: frozenset[str] = frozenset()  # every key's folded name
    lengths: frozenset[int] = frozenset()  # their lengths: a spelling folds one character to one
    look_alikes: tuple[bytes, ...] = ()  # UTF-8 of the non-ASCII letters that fold to a letter of a key


@dataclass(frozen=True, slots=True)
class Passthrough:
    method: str
    path: str
    ttl_seconds: float
    negative_ttl_seconds: float
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class KeySpec:
    header: str  # lower-case header name
    scheme: Literal["raw", "bearer"]
    conflicting_headers: tuple[str, ...]
    issued_live_prefix: str
    issued_test_prefix: str
    passthrough: Passthrough | None
    shape: KeyShape  # issued prefixes + the provider's own key shapes (proxy/keys/shapes.py)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a provider words errors: one template, code and message tables, extra headers by status (or,
    for one error, by its engine code: that entry replaces the status's, so it can leave a header out)."""

    field_style: FieldStyle
    error: Render
    codes: dict[str, str]
    messages: dict[str, str]
    headers: dict[int, Headers]
    default_headers: Headers
    by_code: dict[str, Headers] = field(default_factory=dict)

    def headers_for(self, status: int, code: str | None = None) -> Headers:
        if code is not None and self.by_code and (found := self.by_code.get(code)) is not None:
            return found
        return self.headers.get(status, self.default_headers)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    source: str
    base_url: str
    connect_timeout: float | None
    total_timeout: float | None
    prefixes: tuple[str, ...]
    keys: KeySpec
    dialect: Dialect
    body_triggers: tuple[BodyTrigger, ...]
    key_prefix_triggers: tuple[str, ...]
    misplaced_headers: frozenset[str]  # every lower-case spelling of a misplaced name (flagnames.header_spellings)
    misplaced_query: frozenset[str]  # folded misplaced names (flagnames.query_name_is_misplaced)
    test_request_id_prefix: str
    live_request_id_prefix: str
    test_headers: Headers
    envelope: Render | None
    validate_live: bool
    unmatched_read_scope: str
    unmatched_write_scope: str
    routes: PathTable[Route]
    route_list: tuple[Route, ...]
    methods: frozenset[str]  # the methods the routes and key check use; others are 405 (proxy.target)
    allow: str  # the same, as an ``Allow`` header value
    flag_paths: FlagPaths = field(default=FlagPaths())  # the keys on body triggers' paths, for the body stage
    idempotency: IdempotencySpec = DEFAULT_IDEMPOTENCY  # compiled by proxy.policy.idempotency
    contract: Contract | None = None  # documented answers per route and status (proxy/policy/contract.py)
    webhooks: WebhookSpec | None = None  # the ``webhooks:`` section (proxy/webhooks/policy.py)
    sandbox: SandboxSpec | None = None  # the stateful sandbox for test keys (proxy/sandbox/spec.py)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        return self.routes.match(method, path)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every loaded policy and the mount table: (prefix, policy) pairs, longest prefix first."""

    policies: tuple[Policy, ...]
    mounts: tuple[tuple[str, Policy], ...]

    def by_name(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)

