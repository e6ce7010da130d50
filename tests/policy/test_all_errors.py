"""The all-errors validator (proxy/policy/all_errors.py): jsonschema's errors, found within a budget.

The oracle is jsonschema's own ``Draft7Validator`` over the same compiled schemas: on any body within
its declared bounds, the bounded validator reports the same errors, and the route's findings are the
ones the unbounded validator listed before (sorted by path, each once).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from proxy.errors import FieldError
from proxy.policy.all_errors import AllErrorsValidator, canonical, json_equal
from proxy.policy.findings import OutOfSteps, metered
from proxy.policy.loader import load_policy
from proxy.policy.validation import BodyValidator, _path_order

POLICIES = Path(__file__).resolve().parents[2] / "policies"
SENT = load_policy(POLICIES / "sent.yaml")
SENDGRID = load_policy(POLICIES / "sendgrid.yaml")


def route(policy: Any, method: str, path: str) -> BodyValidator:
    match = policy.match(method, path)
    assert match is not None
    validator: BodyValidator = match[0].validator
    return validator


# Valid bodies of the richest routes; the property below breaks them at random places.
CASES: list[tuple[BodyValidator, dict[str, Any]]] = [
    (route(SENT, "POST", "/v3/messages"),
     {"to": ["+15555550100", "+15555550101"], "text": "hi", "channel": ["sms", "whatsapp"],
      "template": {"id": "t", "name": "welcome", "parameters": {"a": "1"}}, "media_urls": ["https://x.example/a"],
      "scheduled_at": "2024-01-15T10:30:00Z", "sandbox": True}),
    (route(SENT, "POST", "/v3/messages"),
     {"phone_number": "+1234567890", "template_id": "welcome", "variables": {"name": "x"}, "test_mode": True}),
    (route(SENT, "POST", "/v3/webhooks"),
     {"endpoint_url": "https://example.com/hook", "event_types": ["message.sent"], "test_mode": True}),
    (route(SENDGRID, "POST", "/v3/mail/send"), {
        "personalizations": [{"to": [{"email": "to@example.com", "name": "To"}], "cc": [{"email": "cc@example.com"}],
                              "subject": "s", "headers": {"X-A": "1"}, "substitutions": {"-n-": "v"},
                              "custom_args": {"k": "v"}, "send_at": 1700000000}],
        "from": {"email": "from@example.com", "name": "From"},
        "reply_to_list": [{"email": "r1@example.com"}, {"email": "r2@example.com"}],
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hello"}, {"type": "text/html", "value": "<p>Hi</p>"}],
        "attachments": [{"content": "aGVsbG8=", "filename": "a.txt", "disposition": "inline", "content_id": "c"}],
        "categories": ["news", "weekly"], "headers": {"X-B": "2"}, "custom_args": {"a": "b"},
        "asm": {"group_id": 1, "groups_to_display": [1, 2]}, "ip_pool_name": "pool",
        "mail_settings": {"sandbox_mode": {"enable": True}, "spam_check": {"enable": True, "threshold": 5}},
        "tracking_settings": {"click_tracking": {"enable": True}},
    }),
]

SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([1.0, 2.5]) | st.text(max_size=4)
           | st.sampled_from(["", "+15555550100", "a@b.co", "sms", "text/plain", "inline", "x;y", "aGVsbG8="]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["email", "name", "type", "value", "to", "enable", "x", "id"]), inner, max_size=3),
    max_leaves=8)


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


@st.composite
def broken(draw: st.DrawFn) -> tuple[BodyValidator, Any]:
    """A valid body with a few values replaced, dropped or duplicated."""
    validator, valid = draw(st.sampled_from(CASES))
    body: Any = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 4))):
        place = draw(st.sampled_from(list(_places(body))))
        if not place:
            continue
        *parent_path, last = place
        parent = body
        for part in parent_path:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "drop", "repeat"]))
        if action == "replace":
            parent[last] = draw(JSON)
        elif action == "drop" and isinstance(parent, dict):
            del parent[last]
        elif action == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return validator, body


def _errors(validator: Any, body: Any) -> list[tuple[str, str]]:
    return sorted((repr(list(error.absolute_path)), str(error.validator)) for error in validator.iter_errors(body))


def _listed_before(validator: BodyValidator, body: Any) -> list[FieldError]:
    """What the unbounded validator listed: jsonschema's errors sorted by path, described, each finding once."""
    assert validator.slow is not None
    stock = Draft7Validator(validator.slow.schema, format_checker=validator.slow.format_checker)
    errors = sorted(stock.iter_errors(body), key=lambda e: _path_order(e.absolute_path))
    findings = [finding for error in errors for finding in validator._describe(error)]
    findings += [finding for rule in validator.rules for finding in rule(body)]
    return list(dict.fromkeys(findings))


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=broken())
def test_within_its_bounds_it_finds_what_jsonschema_finds(case: tuple[BodyValidator, Any]) -> None:
    validator, body = case
    assert validator.slow is not None and validator.fast is not None
    stock = Draft7Validator(validator.slow.schema, format_checker=validator.slow.format_checker)
    assert validator.slow.is_valid(body) == stock.is_valid(body) == validator.fast.is_valid(body)
    assert _errors(validator.slow, body) == _errors(stock, body)
    assert validator.check(body) == _listed_before(validator, body)


# ---------------------------------------------------------------------------------------- keywords


@pytest.mark.parametrize(("one", "two", "equal"), [
    (1, 1.0, True), (1, True, False), (0, False, False), (None, None, True), ("1", 1, False),
    ([1, [True]], [1.0, [True]], True), ([True], [1], False), ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False), ({"a": [1]}, {"a": [2]}, False), ([], {}, False), ("x", "x", True),
])
def test_json_equality_and_its_hashable_form(one: Any, two: Any, equal: bool) -> None:
    assert json_equal(one, two) is equal
    assert (canonical(one) == canonical(two)) is equal


@pytest.mark.parametrize(("schema", "body"), [
    ({"uniqueItems": True}, [{"a": i} for i in range(300)] + [{"a": 7.0}]),
    ({"uniqueItems": True}, [1, True, 0, False, [1], [True]]),
    ({"enum": [[1, {"a": True}], "x"]}, [1.0, {"a": True}]),
    ({"enum": [[1, {"a": True}], "x"]}, [1, {"a": 1}]),
    ({"const": {"a": [1]}}, {"a": [1.0]}),
    ({"items": [{"type": "string"}], "additionalItems": False}, ["a", 1]),
    ({"items": [{"type": "string"}], "additionalItems": {"type": "integer"}}, ["a", 1, "b"]),
    ({"contains": {"type": "string"}}, [1, 2]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 3),
    ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, None),
    ({"not": {"required": ["a"]}}, {"a": 1}),
    ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"c": 1}),
    ({"additionalProperties": False, "patternProperties": {"^x": {}}}, {"xa": 1, "b": 2}),
    ({"minProperties": 2, "maxProperties": 2}, {"a": 1}),
    ({"type": ["object", "null"]}, []),
])
def test_restated_keywords_agree_with_jsonschema(schema: dict[str, Any], body: Any) -> None:
    ours, stock = AllErrorsValidator(schema), Draft7Validator(schema)
    assert _errors(ours, body) == _errors(stock, body)


# ---------------------------------------------------------------------------------------- bounds


def test_an_array_over_its_max_items_is_reported_for_its_length_alone_without_walking_it() -> None:
    validator = AllErrorsValidator({"type": "array", "maxItems": 3, "uniqueItems": True, "items": {"type": "string"}})
    with metered(10):  # 60,000 items, ten steps
        assert _errors(validator, [1] * 60_000) == [("[]", "maxItems")]
    assert len(_errors(validator, [1, 1, 1])) == 4  # within the bound: every item, and the repeat


def test_every_keyword_and_every_element_walked_is_a_step() -> None:
    validator = AllErrorsValidator({"type": "array", "items": {"type": "integer"}})
    body = list(range(1000))
    with metered(2 * len(body) + 2):  # the array's two keywords, then an item and its type each
        assert list(validator.iter_errors(body)) == []
    with pytest.raises(OutOfSteps), metered(2 * len(body)):
        list(validator.iter_errors(body))


def test_a_pattern_over_a_long_string_costs_a_step_per_kib() -> None:
    validator = AllErrorsValidator({"type": "string", "pattern": "^a*$"})
    with metered(40):
        assert list(validator.iter_errors("a" * 30 * 1024)) == []
    with pytest.raises(OutOfSteps), metered(30):
        list(validator.iter_errors("a" * 30 * 1024))


def test_outside_a_metered_block_there_is_no_budget() -> None:
    assert AllErrorsValidator({"items": {"type": "integer"}}).is_valid(list(range(20_000)))
