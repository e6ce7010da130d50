"""The ``sandbox:`` section of a policy, compiled once at load (its own compile function, like every
capability's section: DESIGN.md, "Each capability compiles its own policy section").

A policy switches the stateful sandbox on by having the section; without it, its test keys keep the
stateless synthesized answers. Everything provider-specific the sandbox does is here as data: which
route is which operation, id prefixes, the lifecycle and its events, magic numbers, template review
rules, error codes and statuses, and the JSON shape of every object (templates, compiled to functions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft7Validator

from proxy.errors import GatewayError
from proxy.masking import mask_echo
from proxy.policy.template import Render, TemplateError, compile_template
from proxy.sandbox.format import SANDBOX_SCHEMA
from proxy.sandbox.magic import MagicNumber, compile_magic

Fail = Callable[[str, str], Exception]
RuleAt = Literal["create", "review", "off"]
# Operations that name one object: their route must have an {id} parameter.
_BY_ID = frozenset({"contacts.get", "contacts.update", "suppression.remove", "templates.get", "messages.get",
                    "webhooks.get", "webhooks.delete"})
_DEFAULT_RULES: Mapping[str, tuple[RuleAt, str]] = {
    "syntax": ("create", "Placeholders must be {{1}}, {{2}}, …"),
    "sequential": ("review", "Variables must be numbered in order of use, from {{1}}, with no gaps."),
    "adjacent": ("review", "Two variables may not be next to each other."),
    "edges": ("review", "The body may not start or end with a variable."),
}


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    code: str
    message: str  # ``{name}`` placeholders, filled by :meth:`SandboxSpec.error`


@dataclass(frozen=True, slots=True)
class TemplateReview:
    review_steps: int
    rules: Mapping[str, tuple[RuleAt, str]]  # rule → (when it applies, the reason given)
    rejected_names: Mapping[str, str]  # a magic name → its rejection reason


@dataclass(frozen=True, slots=True)
class Lookups:
    """Read-only provider paths for validate-only with a live key (``{phone}``/``{email}``/``{id}``)."""

    contact_by_phone: str
    contact_by_email: str
    template: str


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    operations: Mapping[str, str]  # route id → operation
    ids: Mapping[str, str]  # kind → prefix
    default_limit: int
    max_limit: int
    step_seconds: float
    states: tuple[str, ...]  # the lifecycle, first state first
    events: Mapping[str, str | None]  # state or occasion → event type (None: no event)
    magic: Mapping[str, MagicNumber]
    stop_keywords: frozenset[str]
    stop_channel: str
    templates: TemplateReview
    lookups: Lookups | None
    statuses: Mapping[str, int]
    errors: Mapping[str, ErrorSpec]
    shapes: Mapping[str, Render]

    def error(self, key: str, **values: Any) -> GatewayError:
        """The policy's error ``key`` with its placeholders filled. A phone number or an email quoted back
        is masked (``+27******0002``): an error body, like a log line, never carries one whole."""
        spec = self.errors[key]
        message = spec.message
        if "{" in message:
            message = message.format_map(_Blank({name: mask_echo(str(value)) for name, value in values.items()}))
        return GatewayError(spec.status, spec.code, message, reason=key)

    def next_state(self, state: str) -> str | None:
        """The state a lifecycle step moves ``state`` to; None at the end (or off the lifecycle)."""
        states = self.states
        if state not in states:
            return None
        index = states.index(state) + 1
        return states[index] if index < len(states) else None


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def compile_sandbox(node: Any, routes: Sequence[Any], fail: Fail) -> SandboxSpec | None:
    """The compiled section, or None when the policy has none. ``routes`` are the policy's compiled routes;
    ``fail(where, message)`` builds the loader's error (``file: sandbox.key.path: message``)."""
    if node is None:
        return None
    errors = sorted(Draft7Validator(SANDBOX_SCHEMA).iter_errors(node), key=lambda e: list(map(str, e.path)))
    if errors:
        where = ".".join(["sandbox", *map(str, errors[0].absolute_path)])
        raise fail(where, errors[0].message)
    by_id = {route.id: route for route in routes}
    for route_id, operation in node["operations"].items():
        route = by_id.get(route_id)
        if route is None:
            raise fail(f"sandbox.operations.{route_id}", "no route has this id")
        if operation in _BY_ID and "id" not in route.path.names:
            raise fail(f"sandbox.operations.{route_id}", f"{operation} needs a route path with an {{id}} parameter")
    lifecycle = node.get("lifecycle", {})
    states = tuple(lifecycle.get("states", ("queued", "sent", "delivered", "read")))
    events = {"sent": "message.sent", "delivered": "message.delivered", "read": "message.read",
              "failed": "message.failed", "received": "message.received", "contact_created": "contact.created",
              "contact_updated": "contact.updated", **lifecycle.get("events", {})}
    templates = node.get("templates", {})
    rules = {name: (rule["at"], rule["reason"]) for name, rule in templates.get("rules", {}).items()}
    shapes = {}
    for name, shape in node["shapes"].items():
        try:
            shapes[name] = compile_template(shape, f"sandbox.shapes.{name}")
        except TemplateError as exc:  # its message starts with the key path of the broken part
            where, _, message = str(exc).partition(": ")
            raise fail(where, message) from exc
    sample = shapes["event"]({"event": {"id": "evt_x", "type": "message.sent", "created_at": "", "data": {}}})
    if not isinstance(sample, dict) or sample.get("test") is not True:
        raise fail("sandbox.shapes.event", 'a sandbox event must carry "test": true (Blueticked TM, WH)')
    pagination = node.get("pagination", {})
    lookups = node.get("live_lookups")
    inbound = node.get("inbound", {})
    return SandboxSpec(
        operations=dict(node["operations"]),
        ids=dict(node["ids"]),
        default_limit=int(pagination.get("default_limit", 20)),
        max_limit=int(pagination.get("max_limit", 100)),
        step_seconds=float(lifecycle.get("step_seconds", 5.0)),
        states=states,
        events=events,
        magic=compile_magic(node.get("magic_numbers"), states, fail),
        stop_keywords=frozenset(word.upper() for word in inbound.get("stop_keywords", ["STOP"])),
        stop_channel=inbound.get("stop_channel", "all"),
        templates=TemplateReview(int(templates.get("review_steps", 1)), {**_DEFAULT_RULES, **rules},
                                 dict(templates.get("rejected_names", {}))),
        lookups=Lookups(**lookups) if lookups else None,
        statuses=dict(node["statuses"]),
        errors={key: ErrorSpec(**value) for key, value in node["errors"].items()},
        shapes=shapes,
    )
